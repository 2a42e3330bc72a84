package githubapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gantry-ci/gantry/internal/githubapi"
)

const (
	token  = "ghs_16C7e42F292c6912E7710c838347Ae178B4a"
	sha    = "a5c3785ed8d6a35868bc169f07e40e889087fd2e"
	digest = "sha256:3b0b5b0c6f2b7e4f1a4a2c8d9e0f1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b"
	logURL = "https://github.com/acme/app/actions/runs/11839207733"
	envURL = "https://staging.app.acme.example"
)

// now is the injected clock; x-ratelimit-reset values are relative to it.
var now = time.Date(2026, 11, 25, 14, 0, 0, 0, time.UTC)

func request() githubapi.Request {
	return githubapi.Request{
		Owner:       "acme",
		Repo:        "app",
		Ref:         sha,
		Environment: "staging",
		Description: "gantry: ghcr.io/acme/app@" + digest,
		Payload:     map[string]any{"digest": digest, "image": "ghcr.io/acme/app@" + digest},
	}
}

// reply is a scripted answer from the fake GitHub.
type reply struct {
	status int
	header map[string]string
	file   string // body from testdata
	body   string // body inline; "{auth}" is replaced by the Authorization header
	hangUp bool   // close the connection without answering
}

// call is what the fake GitHub saw of one request.
type call struct {
	method, path, host string
	auth, apiVersion   string
	body               map[string]any
}

// fakeGitHub answers the two deployment endpoints the way
// https://docs.github.com/en/rest/deployments documents them, with payloads
// from testdata, after first playing any scripted replies.
type fakeGitHub struct {
	t      *testing.T
	prefix string // "/api/v3" for GitHub Enterprise Server
	mux    *http.ServeMux

	mu     sync.Mutex
	calls  []call
	script []reply
	always *reply // answers everything once the script is used up
}

func newFake(t *testing.T, prefix string, script ...reply) *fakeGitHub {
	f := &fakeGitHub{t: t, prefix: prefix, script: script, mux: http.NewServeMux()}
	f.mux.HandleFunc("POST "+prefix+"/repos/{owner}/{repo}/deployments", f.createDeployment)
	f.mux.HandleFunc("POST "+prefix+"/repos/{owner}/{repo}/deployments/{id}/statuses", f.createStatus)
	return f
}

func (f *fakeGitHub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c := call{
		method: r.Method, path: r.URL.Path, host: r.Host,
		auth: r.Header.Get("Authorization"), apiVersion: r.Header.Get("X-GitHub-Api-Version"),
	}
	if err := json.NewDecoder(r.Body).Decode(&c.body); err != nil {
		f.t.Errorf("%s %s: body is not JSON: %v", r.Method, r.URL.Path, err)
	}
	f.mu.Lock()
	f.calls = append(f.calls, c)
	var rp *reply
	if len(f.script) > 0 {
		rp, f.script = &f.script[0], f.script[1:]
	} else {
		rp = f.always
	}
	f.mu.Unlock()

	if rp == nil {
		f.mux.ServeHTTP(w, r)
		return
	}
	if rp.hangUp {
		conn, _, err := w.(http.Hijacker).Hijack()
		if err != nil {
			f.t.Error(err) // not Fatal: this is the server's goroutine
			return
		}
		conn.Close()
		return
	}
	for k, v := range rp.header {
		w.Header().Set(k, v)
	}
	body := []byte(strings.ReplaceAll(rp.body, "{auth}", c.auth))
	if rp.file != "" {
		body = readTestdata(f.t, rp.file)
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		if strings.HasSuffix(rp.file, ".html") {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
		}
	}
	w.WriteHeader(rp.status)
	w.Write(body)
}

func (f *fakeGitHub) createDeployment(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	body := f.calls[len(f.calls)-1].body
	f.mu.Unlock()
	d := f.template("deployment.json")
	repo := f.apiBase(r) + "/repos/" + r.PathValue("owner") + "/" + r.PathValue("repo")
	id := fmt.Sprint(d["id"])
	d["url"] = repo + "/deployments/" + id
	d["statuses_url"] = repo + "/deployments/" + id + "/statuses"
	d["repository_url"] = repo
	d["ref"], d["sha"] = body["ref"], body["ref"]
	d["environment"], d["original_environment"] = body["environment"], body["environment"]
	for _, k := range []string{"task", "payload", "description", "production_environment", "transient_environment"} {
		if v, ok := body[k]; ok {
			d[k] = v
		}
	}
	writeJSON(w, http.StatusCreated, d)
}

func (f *fakeGitHub) createStatus(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	body := f.calls[len(f.calls)-1].body
	f.mu.Unlock()
	s := f.template("deployment_status.json")
	repo := f.apiBase(r) + "/repos/" + r.PathValue("owner") + "/" + r.PathValue("repo")
	s["url"] = fmt.Sprintf("%s/deployments/%s/statuses/%v", repo, r.PathValue("id"), s["id"])
	s["deployment_url"] = repo + "/deployments/" + r.PathValue("id")
	s["repository_url"] = repo
	for _, k := range []string{"state", "description", "log_url", "environment_url"} {
		if v, ok := body[k]; ok {
			s[k] = v
		}
	}
	s["target_url"] = s["log_url"] // GitHub keeps target_url as the old name of log_url
	writeJSON(w, http.StatusCreated, s)
}

func (f *fakeGitHub) apiBase(r *http.Request) string { return "https://" + r.Host + f.prefix }

func (f *fakeGitHub) template(name string) map[string]any {
	var m map[string]any
	dec := json.NewDecoder(bytes.NewReader(readTestdata(f.t, name)))
	dec.UseNumber() // ids exceed float64's exact integers in real payloads
	if err := dec.Decode(&m); err != nil {
		f.t.Fatalf("%s: %v", name, err)
	}
	return m
}

func (f *fakeGitHub) seen() []call {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]call(nil), f.calls...)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func readTestdata(t *testing.T, name string) []byte {
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// sleeps records the waits the client asked for instead of waiting.
type sleeps struct {
	mu sync.Mutex
	d  []time.Duration
}

func (s *sleeps) sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.d = append(s.d, d)
	return nil
}

func (s *sleeps) all() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Duration(nil), s.d...)
}

// newClient serves f over TLS and returns a Client for apiURL whose every
// connection, whatever the host name (api.github.com included), reaches f,
// so the real default base URL is exercised and nothing leaves the machine.
// Waits are recorded, not slept; opts come after and may replace that.
func newClient(t *testing.T, apiURL string, f *fakeGitHub, opts ...githubapi.Option) (*githubapi.Client, *sleeps) {
	t.Helper()
	srv := httptest.NewTLSServer(f)
	t.Cleanup(srv.Close)
	tr := srv.Client().Transport.(*http.Transport).Clone()
	tr.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "tcp", srv.Listener.Addr().String())
	}
	tr.TLSClientConfig.ServerName = "example.com" // a name in httptest's certificate
	s := &sleeps{}
	opts = append([]githubapi.Option{githubapi.WithSleep(s.sleep), githubapi.WithClock(func() time.Time { return now })}, opts...)
	c, err := githubapi.New(token, apiURL, &http.Client{Transport: tr}, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return c, s
}

func TestNewRequiresToken(t *testing.T) {
	t.Parallel()
	for _, tok := range []string{"", " \n"} {
		_, err := githubapi.New(tok, "", nil)
		if err == nil || !strings.Contains(err.Error(), `"github-token"`) {
			t.Errorf("New(%q) error = %v, want one naming input \"github-token\"", tok, err)
		}
	}
}

func TestNewRejectsBadAPIURL(t *testing.T) {
	t.Parallel()
	for _, u := range []string{"ghe.example.com", "ftp://ghe.example.com", "https://"} {
		if _, err := githubapi.New(token, u, nil); err == nil || !strings.Contains(err.Error(), "GitHub API URL") {
			t.Errorf("New(apiURL %q) error = %v, want a GitHub API URL error", u, err)
		}
	}
}

func TestCreate(t *testing.T) {
	t.Parallel()
	f := newFake(t, "")
	c, _ := newClient(t, "", f)
	req := request()
	req.Environment = "production"
	req.ProductionEnvironment = true

	d, err := c.Create(t.Context(), req)
	if err != nil {
		t.Fatal(err)
	}
	want := githubapi.Deployment{Owner: "acme", Repo: "app", ID: 1487592738,
		URL: "https://api.github.com/repos/acme/app/deployments/1487592738"}
	if d != want {
		t.Errorf("Create = %+v, want %+v", d, want)
	}

	calls := f.seen()
	if len(calls) != 1 {
		t.Fatalf("%d requests, want 1", len(calls))
	}
	got := calls[0]
	if got.method != "POST" || got.host != "api.github.com" || got.path != "/repos/acme/app/deployments" {
		t.Errorf("request = %s %s%s, want POST api.github.com/repos/acme/app/deployments", got.method, got.host, got.path)
	}
	if got.auth != "Bearer "+token {
		t.Errorf("Authorization = %q, want Bearer <token>", got.auth)
	}
	if got.apiVersion != "2022-11-28" {
		t.Errorf("X-GitHub-Api-Version = %q, want 2022-11-28", got.apiVersion)
	}
	wantBody := map[string]any{
		"ref":                    sha,
		"task":                   "deploy",
		"auto_merge":             false,
		"required_contexts":      []any{},
		"environment":            "production",
		"description":            "gantry: ghcr.io/acme/app@" + digest,
		"payload":                map[string]any{"digest": digest, "image": "ghcr.io/acme/app@" + digest},
		"production_environment": true,
		"transient_environment":  false,
	}
	if !reflect.DeepEqual(got.body, wantBody) {
		g, _ := json.MarshalIndent(got.body, "", "  ")
		w, _ := json.MarshalIndent(wantBody, "", "  ")
		t.Errorf("request body:\n%s\nwant:\n%s", g, w)
	}
}

func TestCreateRejectsIncompleteRequest(t *testing.T) {
	t.Parallel()
	f := newFake(t, "")
	c, _ := newClient(t, "", f)
	_, err := c.Create(t.Context(), githubapi.Request{Owner: "acme", Repo: "app", Environment: "staging"})
	if err == nil || !strings.Contains(err.Error(), "missing ref") {
		t.Errorf("error = %v, want one saying the ref is missing", err)
	}
	if n := len(f.seen()); n != 0 {
		t.Errorf("%d requests for an incomplete request, want 0", n)
	}
}

func TestTrackerStatusSequence(t *testing.T) {
	t.Parallel()
	f := newFake(t, "")
	c, _ := newClient(t, "", f)
	var warnings []string
	tr := githubapi.NewTracker(c, request(), logURL, envURL, func(format string, args ...any) {
		warnings = append(warnings, fmt.Sprintf(format, args...))
	})

	tr.Start(t.Context())
	tr.Finish(t.Context(), githubapi.StateSuccess, "deployed ghcr.io/acme/app@"+digest)

	if len(warnings) != 0 {
		t.Errorf("warnings: %q", warnings)
	}
	if d, ok := tr.Deployment(); !ok || d.ID != 1487592738 {
		t.Errorf("Deployment() = %+v, %v; want id 1487592738", d, ok)
	}
	calls := f.seen()
	if len(calls) != 4 {
		t.Fatalf("%d requests, want create + 3 statuses", len(calls))
	}
	type status struct {
		state, logURL, envURL string
		autoInactive          any
	}
	var got []status
	for _, c := range calls[1:] {
		if c.path != "/repos/acme/app/deployments/1487592738/statuses" {
			t.Errorf("status posted to %s", c.path)
		}
		s := status{state: fmt.Sprint(c.body["state"]), logURL: fmt.Sprint(c.body["log_url"]), autoInactive: c.body["auto_inactive"]}
		if v, ok := c.body["environment_url"]; ok {
			s.envURL = fmt.Sprint(v)
		}
		got = append(got, s)
	}
	want := []status{
		{state: "queued", logURL: logURL, autoInactive: false},
		{state: "in_progress", logURL: logURL, autoInactive: false},
		{state: "success", logURL: logURL, envURL: envURL, autoInactive: true},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("statuses:\n got %+v\nwant %+v", got, want)
	}
}

// A failed deploy must not deactivate the deployment still serving, and has
// no environment URL to show.
func TestTrackerFailure(t *testing.T) {
	t.Parallel()
	f := newFake(t, "")
	c, _ := newClient(t, "", f)
	tr := githubapi.NewTracker(c, request(), logURL, envURL, nil)
	tr.Start(t.Context())
	tr.Finish(t.Context(), githubapi.StateFailure, "canary error rate 4.1% > 1%; rolled back")

	calls := f.seen()
	last := calls[len(calls)-1].body
	want := map[string]any{
		"state": "failure", "log_url": logURL, "auto_inactive": false,
		"description": "canary error rate 4.1% > 1%; rolled back",
	}
	if !reflect.DeepEqual(last, want) {
		t.Errorf("final status = %v, want %v", last, want)
	}
}

// The stage's context ending (its timeout) is when "failure" matters most.
func TestTrackerFinishAfterContextEnds(t *testing.T) {
	t.Parallel()
	f := newFake(t, "")
	c, _ := newClient(t, "", f)
	var warnings []string
	tr := githubapi.NewTracker(c, request(), logURL, envURL, func(format string, args ...any) {
		warnings = append(warnings, fmt.Sprintf(format, args...))
	})
	ctx, cancel := context.WithCancel(t.Context())
	tr.Start(ctx)
	cancel()
	tr.Finish(ctx, githubapi.StateFailure, "deploy timed out")

	if len(warnings) != 0 {
		t.Errorf("warnings: %q", warnings)
	}
	calls := f.seen()
	if got := calls[len(calls)-1].body["state"]; got != "failure" {
		t.Errorf("last state = %v, want failure", got)
	}
}

func TestSetStatus(t *testing.T) {
	t.Parallel()
	dep := githubapi.Deployment{Owner: "acme", Repo: "app", ID: 1487592738}
	long := strings.Repeat("é", 200) // multi-byte, so a byte cut would break UTF-8

	t.Run("description cut to 140 characters", func(t *testing.T) {
		t.Parallel()
		f := newFake(t, "")
		c, _ := newClient(t, "", f)
		if err := c.SetStatus(t.Context(), dep, githubapi.Status{State: "error", Description: long}); err != nil {
			t.Fatal(err)
		}
		got := fmt.Sprint(f.seen()[0].body["description"])
		if n := len([]rune(got)); n != 140 || !strings.HasSuffix(got, "…") {
			t.Errorf("description has %d characters (%q), want 140 ending in …", n, got)
		}
	})
	for _, state := range []string{"", "done", "SUCCESS", "pending_approval"} {
		t.Run("invalid state "+state, func(t *testing.T) {
			t.Parallel()
			f := newFake(t, "")
			c, _ := newClient(t, "", f)
			err := c.SetStatus(t.Context(), dep, githubapi.Status{State: state})
			if err == nil || !strings.Contains(err.Error(), "is not one of queued, in_progress") {
				t.Errorf("error = %v, want the list of valid states", err)
			}
			if n := len(f.seen()); n != 0 {
				t.Errorf("%d requests, want 0", n)
			}
		})
	}
}

func TestRetries(t *testing.T) {
	t.Parallel()
	resetIn5s := fmt.Sprint(now.Add(5 * time.Second).Unix())
	tests := []struct {
		name      string
		script    []reply
		always    *reply
		wantCalls int
		wantSleep []time.Duration
		wantErr   string // "" for success
	}{{
		name:      "502 then success",
		script:    []reply{{status: 502, file: "unicorn.html"}},
		wantCalls: 2,
		wantSleep: []time.Duration{time.Second},
	}, {
		name:      "connection dropped then success",
		script:    []reply{{hangUp: true}},
		wantCalls: 2,
		wantSleep: []time.Duration{time.Second},
	}, {
		name: "secondary rate limit with Retry-After",
		script: []reply{{status: 403, file: "secondary_rate_limit.json", header: map[string]string{
			"Retry-After": "1", "X-RateLimit-Limit": "5000", "X-RateLimit-Remaining": "4987", "X-RateLimit-Reset": resetIn5s,
		}}},
		wantCalls: 2,
		wantSleep: []time.Duration{time.Second},
	}, {
		name: "429 until x-ratelimit-reset",
		script: []reply{{status: 429, body: `{"message":"API rate limit exceeded for installation ID 52718023."}`, header: map[string]string{
			"X-RateLimit-Limit": "5000", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": resetIn5s,
		}}},
		wantCalls: 2,
		wantSleep: []time.Duration{6 * time.Second}, // 5 s plus a second for clock skew
	}, {
		name: "secondary rate limit asking for too long",
		script: []reply{{status: 403, file: "secondary_rate_limit.json", header: map[string]string{
			"Retry-After": "600",
		}}},
		wantCalls: 1,
		wantErr:   "creating deployment for environment staging: 403 Forbidden: You have exceeded a secondary rate limit. Please wait a few minutes before you try again. If you reach out to GitHub Support for help, please include the request ID 0C4A:2B7E:1A3F5C9:1B2D4E8:6745F1A3. (GitHub asks to wait 10m0s, longer than the 1m0s this stage waits; re-run the job later)",
	}, {
		name:      "500 forever",
		always:    &reply{status: 500, file: "server_error.json"},
		wantCalls: 4,
		wantSleep: []time.Duration{time.Second, 2 * time.Second, 4 * time.Second},
		wantErr:   "creating deployment for environment staging: 500 Internal Server Error: Server Error (gave up after 4 attempts)",
	}, {
		name:      "422 is not retried",
		script:    []reply{{status: 422, file: "no_ref.json"}},
		wantCalls: 1,
		wantErr:   "creating deployment for environment staging: 422 Unprocessable Entity: No ref found for: 0000000000000000000000000000000000000000",
	}, {
		name: "403 without rate limit is a permission problem",
		script: []reply{{status: 403, file: "not_accessible.json", header: map[string]string{
			"X-RateLimit-Limit": "5000", "X-RateLimit-Remaining": "4990", "X-RateLimit-Reset": resetIn5s,
		}}},
		wantCalls: 1,
		wantErr:   `creating deployment for environment staging: 403 Forbidden: Resource not accessible by integration (the token needs "permissions: deployments: write" on the job)`,
	}, {
		name:      "401 names the input",
		script:    []reply{{status: 401, body: `{"message":"Bad credentials","documentation_url":"https://docs.github.com/rest","status":"401"}`}},
		wantCalls: 1,
		wantErr:   `creating deployment for environment staging: 401 Unauthorized: Bad credentials (check input "github-token")`,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFake(t, "", tt.script...)
			f.always = tt.always
			c, s := newClient(t, "", f)

			d, err := c.Create(t.Context(), request())
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("Create: %v", err)
			case tt.wantErr == "" && d.ID != 1487592738:
				t.Errorf("Create = %+v after retrying, want the deployment", d)
			case tt.wantErr != "" && (err == nil || err.Error() != tt.wantErr):
				t.Errorf("Create error:\n got %v\nwant %s", err, tt.wantErr)
			}
			if n := len(f.seen()); n != tt.wantCalls {
				t.Errorf("%d requests, want %d", n, tt.wantCalls)
			}
			if got := s.all(); !reflect.DeepEqual(got, tt.wantSleep) {
				t.Errorf("waited %v, want %v", got, tt.wantSleep)
			}
		})
	}
}

func TestRetryStopsWhenContextEnds(t *testing.T) {
	t.Parallel()
	f := newFake(t, "")
	f.always = &reply{status: 503, file: "server_error.json"}
	ctx, cancel := context.WithCancel(t.Context())
	c, _ := newClient(t, "", f, githubapi.WithSleep(func(context.Context, time.Duration) error {
		cancel() // the job is cancelled while waiting to retry
		return ctx.Err()
	}))
	_, err := c.Create(ctx, request())
	if !errors.Is(err, context.Canceled) {
		t.Errorf("error = %v, want context.Canceled in its chain", err)
	}
	if n := len(f.seen()); n != 1 {
		t.Errorf("%d requests after cancellation, want 1", n)
	}
}

func TestEnterpriseServer(t *testing.T) {
	t.Parallel()
	for _, apiURL := range []string{"https://ghe.example.com", "https://ghe.example.com/api/v3", "https://ghe.example.com/api/v3/"} {
		t.Run(apiURL, func(t *testing.T) {
			t.Parallel()
			f := newFake(t, "/api/v3")
			c, _ := newClient(t, apiURL, f)
			tr := githubapi.NewTracker(c, request(), logURL, envURL, func(format string, args ...any) {
				t.Errorf("warning: "+format, args...)
			})
			tr.Start(t.Context())
			tr.Finish(t.Context(), githubapi.StateSuccess, "deployed")

			d, _ := tr.Deployment()
			if want := "https://ghe.example.com/api/v3/repos/acme/app/deployments/1487592738"; d.URL != want {
				t.Errorf("deployment URL = %s, want %s", d.URL, want)
			}
			var paths []string
			for _, c := range f.seen() {
				if c.host != "ghe.example.com" {
					t.Errorf("request to host %s, want ghe.example.com", c.host)
				}
				paths = append(paths, c.path)
			}
			want := []string{
				"/api/v3/repos/acme/app/deployments",
				"/api/v3/repos/acme/app/deployments/1487592738/statuses",
				"/api/v3/repos/acme/app/deployments/1487592738/statuses",
				"/api/v3/repos/acme/app/deployments/1487592738/statuses",
			}
			if !reflect.DeepEqual(paths, want) {
				t.Errorf("paths = %q, want %q", paths, want)
			}
		})
	}
}

// GitHub being down must cost the deploy a few warnings, never its result.
func TestTrackerTurnsOutageIntoWarnings(t *testing.T) {
	t.Parallel()
	f := newFake(t, "")
	f.always = &reply{status: 500, body: `{"message":"Server Error"}`}
	c, _ := newClient(t, "", f)
	var warnings []string
	tr := githubapi.NewTracker(c, request(), logURL, envURL, func(format string, args ...any) {
		warnings = append(warnings, fmt.Sprintf(format, args...))
	})

	deploy := func(ctx context.Context) error {
		tr.Start(ctx)
		// ... the rollout itself would run here and succeed ...
		tr.Finish(ctx, githubapi.StateSuccess, "deployed")
		return nil
	}
	if err := deploy(t.Context()); err != nil {
		t.Fatalf("deploy = %v, want nil", err)
	}

	want := []string{
		"GitHub deployment not recorded, the deploy goes on: creating deployment for environment staging: 500 Internal Server Error: Server Error (gave up after 4 attempts)",
		"GitHub deployment status success not reported: no deployment was created",
	}
	if !reflect.DeepEqual(warnings, want) {
		t.Errorf("warnings:\n got %q\nwant %q", warnings, want)
	}
	if n := len(f.seen()); n != 4 {
		t.Errorf("%d requests, want 4 attempts at creating and nothing after", n)
	}
	if _, ok := tr.Deployment(); ok {
		t.Error("Deployment() reports a deployment after Create failed")
	}
}

func TestTrackerKeepsGoingAfterStatusFailures(t *testing.T) {
	t.Parallel()
	f := newFake(t, "")
	c, _ := newClient(t, "", f)
	var warnings []string
	tr := githubapi.NewTracker(c, request(), logURL, envURL, func(format string, args ...any) {
		warnings = append(warnings, fmt.Sprintf(format, args...))
	})
	tr.Start(t.Context()) // GitHub is healthy until the deploy ends
	f.mu.Lock()
	f.always = &reply{status: 422, body: `{"message":"Validation Failed","errors":[{"resource":"DeploymentStatus","code":"custom","field":"environment_url","message":"environment_url must use http(s) scheme"}]}`}
	f.mu.Unlock()
	tr.Finish(t.Context(), githubapi.StateSuccess, "deployed")
	tr.Finish(t.Context(), "finished", "typo in the state")

	want := []string{
		"GitHub deployment status not updated: setting deployment 1487592738 status to success: 422 Unprocessable Entity: Validation Failed; environment_url must use http(s) scheme",
		`GitHub deployment status not updated: setting deployment 1487592738 status to finished: state "finished" is not one of queued, in_progress, pending, success, failure, error, inactive`,
	}
	if !reflect.DeepEqual(warnings, want) {
		t.Errorf("warnings:\n got %q\nwant %q", warnings, want)
	}
}

func TestTrackerWithoutClientDoesNothing(t *testing.T) {
	t.Parallel()
	tr := githubapi.NewTracker(nil, request(), logURL, envURL, func(format string, args ...any) {
		t.Errorf("warning from a disabled tracker: "+format, args...)
	})
	tr.Start(t.Context())
	tr.Finish(t.Context(), githubapi.StateSuccess, "deployed")
	if _, ok := tr.Deployment(); ok {
		t.Error("disabled tracker reports a deployment")
	}
}

// A proxy or a misbehaving server may echo the Authorization header back;
// the token must still never reach a log.
func TestTokenNeverInErrors(t *testing.T) {
	t.Parallel()
	f := newFake(t, "")
	f.always = &reply{status: 502, body: `{"message":"upstream rejected request with Authorization: {auth}"}`}
	c, _ := newClient(t, "", f)
	var warnings []string
	tr := githubapi.NewTracker(c, request(), logURL, envURL, func(format string, args ...any) {
		warnings = append(warnings, fmt.Sprintf(format, args...))
	})
	tr.Start(t.Context())
	tr.Finish(t.Context(), githubapi.StateFailure, "rolled back")
	_, err := c.Create(t.Context(), request())
	if err == nil {
		t.Fatal("Create succeeded against a failing server")
	}

	texts := append(warnings, err.Error())
	for _, s := range texts {
		if strings.Contains(s, token) {
			t.Errorf("token in %q", s)
		}
	}
	if !strings.Contains(err.Error(), "Authorization: Bearer ***") {
		t.Errorf("error = %v, want the echoed token replaced by ***", err)
	}
}

func TestParseRepository(t *testing.T) {
	t.Parallel()
	owner, repo, err := githubapi.ParseRepository("acme/app")
	if err != nil || owner != "acme" || repo != "app" {
		t.Errorf(`ParseRepository("acme/app") = %q, %q, %v`, owner, repo, err)
	}
	for _, bad := range []string{"", "acme", "acme/", "/app", "acme/app/extra"} {
		if _, _, err := githubapi.ParseRepository(bad); err == nil {
			t.Errorf("ParseRepository(%q) accepted", bad)
		}
	}
}
