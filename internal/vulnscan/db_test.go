package vulnscan_test

import (
	"bytes"
	"encoding/base64"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"

	"github.com/gantry-ci/gantry/internal/ocitest"
	"github.com/gantry-ci/gantry/internal/registry"
	"github.com/gantry-ci/gantry/internal/vulnscan"
	"github.com/gantry-ci/gantry/internal/vulnscan/scantest"
)

// TestDBDownloadFallsBackAcrossMirrors serves the fixture DB as an OCI
// artifact from a real registry where the first mirror always answers 429
// TOOMANYREQUESTS: the stage retries it with backoff, falls back to the
// second mirror, logs progress, stores the DB in cache-dir and scans with it.
func TestDBDownloadFallsBackAcrossMirrors(t *testing.T) {
	var limited atomic.Int32
	reg, err := ocitest.StartRegistry(func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if strings.HasPrefix(r.URL.Path, "/v2/busy/") {
				limited.Add(1)
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusTooManyRequests)
				w.Write([]byte(`{"errors":[{"code":"TOOMANYREQUESTS","message":"retry-after: 1s, allowed: 44000/minute"}]}`))
				return
			}
			next.ServeHTTP(w, r)
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Close() })

	art, err := scantest.Artifact(fixtureCache(t))
	if err != nil {
		t.Fatal(err)
	}
	good, _ := name.ParseReference(reg.Host + "/mirror/trivy-db:2")
	if err := remote.Write(good, art); err != nil {
		t.Fatal(err)
	}

	cache := t.TempDir() // empty: nothing cached yet
	in := baseInputs(t, cache)
	in.Offline = false
	in.DBRepositories = []string{reg.Host + "/busy/trivy-db:2", reg.Host + "/mirror/trivy-db:2"}
	in.Backoff = remote.Backoff{Duration: 10 * time.Millisecond, Factor: 2, Steps: 3}
	in.Path = copyRepo(t)
	in.Scanners = []string{"vuln"}
	log := &recorder{}
	in.Log = log

	out, err := vulnscan.Run(t.Context(), in)
	if err != nil && !strings.Contains(err.Error(), "severity gate") {
		t.Fatalf("Run: %v\n%s", err, log)
	}
	if n := limited.Load(); n < 2 {
		t.Errorf("the rate-limited mirror got %d request(s), want retries", n)
	}
	logs := log.String()
	for _, want := range []string{
		"trying mirror 1/2 " + reg.Host + "/busy/trivy-db:2",
		"TOOMANYREQUESTS",
		"falling back to " + reg.Host + "/mirror/trivy-db:2",
		"trying mirror 2/2",
		"100% of",
		"downloaded from " + reg.Host + "/mirror/trivy-db:2",
	} {
		if !strings.Contains(logs, want) {
			t.Errorf("log lacks %q:\n%s", want, logs)
		}
	}
	if db := out.Report.DB; db == nil || db.Source != "download" || !strings.Contains(db.Repository, "/mirror/trivy-db") || !strings.HasPrefix(db.Digest, "sha256:") {
		t.Errorf("DB info = %+v", out.Report.DB)
	}
	for _, f := range []string{"trivy.db", "metadata.json"} {
		if _, err := os.Stat(filepath.Join(cache, "db", f)); err != nil {
			t.Errorf("cache-dir lacks db/%s: %v", f, err)
		}
	}
	if _, ok := find(findingsOf(out.Report, "path "), vulnscan.KindVulnerability, "CVE-2021-23337"); !ok {
		t.Errorf("the downloaded DB did not find lodash CVE-2021-23337")
	}

	// A second run within NextUpdate uses the cache and asks no mirror.
	before := limited.Load()
	in.DBRepositories = []string{reg.Host + "/busy/trivy-db:2"}
	log2 := &recorder{}
	in.Log = log2
	out2, err := vulnscan.Run(t.Context(), in)
	if err != nil && !strings.Contains(err.Error(), "severity gate") {
		t.Fatalf("second Run: %v\n%s", err, log2)
	}
	if db := out2.Report.DB; db == nil || db.Source != "cache" || db.URI() != out.Report.DB.URI() {
		t.Errorf("cached DB info = %+v, want the origin recorded at download (%s)", db, out.Report.DB.URI())
	}
	if limited.Load() != before || !strings.Contains(log2.String(), "is fresh") {
		t.Errorf("second run did not use the fresh cache:\n%s", log2)
	}
}

// TestDBEveryMirrorFails names each mirror and the fix.
func TestDBEveryMirrorFails(t *testing.T) {
	reg, err := ocitest.StartRegistry(func(http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusTooManyRequests)
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Close() })
	in := baseInputs(t, t.TempDir())
	in.Offline = false
	in.Path = copyRepo(t)
	in.DBRepositories = []string{reg.Host + "/a/trivy-db:2", reg.Host + "/b/trivy-db:2"}
	in.Backoff = remote.Backoff{Duration: time.Millisecond, Factor: 1, Steps: 2}
	_, err = vulnscan.Run(t.Context(), in)
	if err == nil {
		t.Fatal("Run succeeded with every mirror rate limiting")
	}
	for _, want := range []string{"every mirror", `"db-repositories"`, "/a/trivy-db:2", "/b/trivy-db:2", "offline: true"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}

	// A cached DB past its NextUpdate but within db-max-age carries on,
	// with a warning.
	in.CacheDir = fixtureCache(t)
	in.Now = func() time.Time { return dbBuilt.Add(30 * time.Hour) }
	log := &recorder{}
	in.Log = log
	fake := &vulnscan.FakeScanner{}
	in.NewScanner = func(vulnscan.ScannerConfig) (vulnscan.Scanner, error) { return fake, nil }
	if _, err := vulnscan.Run(t.Context(), in); err != nil || len(fake.Scanned) != 1 {
		t.Fatalf("Run with a cached DB = %v (scanned %d)\n%s", err, len(fake.Scanned), log)
	}
	if !strings.Contains(log.String(), "warning: vulnerability DB: downloading the vulnerability DB failed") || !strings.Contains(log.String(), "using the cached DB built 2026-11-20T06:00:00Z") {
		t.Errorf("no warning about falling back to the cached DB:\n%s", log)
	}
}

// TestOffline uses only the cache, and fails clearly when it is missing or
// older than db-max-age — before any scanning.
func TestOffline(t *testing.T) {
	cache := fixtureCache(t)
	tests := []struct {
		name  string
		cache string
		age   time.Duration
		want  []string
	}{
		{"missing", t.TempDir(), time.Hour, []string{`input "offline"`, "no vulnerability DB", "actions/cache"}},
		{"stale", cache, 10 * 24 * time.Hour, []string{`input "offline"`, "older than db-max-age 72h0m0s", "240h"}},
		{"fresh enough", cache, 48 * time.Hour, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := baseInputs(t, tt.cache)
			in.Path = copyRepo(t)
			in.Now = func() time.Time { return dbBuilt.Add(tt.age) }
			fake := &vulnscan.FakeScanner{}
			in.NewScanner = func(vulnscan.ScannerConfig) (vulnscan.Scanner, error) { return fake, nil }
			_, err := vulnscan.Run(t.Context(), in)
			if tt.want == nil {
				if err != nil || len(fake.Scanned) != 1 {
					t.Fatalf("Run = %v, scanned %d, want a scan with the cached DB", err, len(fake.Scanned))
				}
				return
			}
			if err == nil {
				t.Fatal("Run succeeded")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q: %v", w, err)
				}
			}
			if len(fake.Scanned) != 0 {
				t.Errorf("scanned before failing on the DB")
			}
		})
	}
}

// TestDBBadArtifactKeepsCache: a mirror serving something other than the
// DB artifact is named as such, and one serving a broken DB layer fails
// without touching the cached DB, which then carries on within db-max-age.
func TestDBBadArtifactKeepsCache(t *testing.T) {
	reg := startRegistry(t)
	img, err := random.Image(64, 1)
	if err != nil {
		t.Fatal(err)
	}
	notDB, _ := name.ParseReference(reg.Host + "/acme/app:1")
	if err := remote.Write(notDB, img); err != nil {
		t.Fatal(err)
	}
	broken, err := mutate.Append(empty.Image, mutate.Addendum{
		Layer: static.NewLayer([]byte("not gzip"), scantest.LayerMediaType), MediaType: scantest.LayerMediaType,
		Annotations: map[string]string{"org.opencontainers.image.title": "db.tar.gz"},
	})
	if err != nil {
		t.Fatal(err)
	}
	brokenRef, _ := name.ParseReference(reg.Host + "/broken/trivy-db:2")
	if err := remote.Write(brokenRef, broken); err != nil {
		t.Fatal(err)
	}

	cache := fixtureCache(t)
	before, err := os.ReadFile(filepath.Join(cache, "db", "trivy.db"))
	if err != nil {
		t.Fatal(err)
	}
	in := baseInputs(t, cache)
	in.Offline = false
	in.Path = copyRepo(t)
	in.Now = func() time.Time { return dbBuilt.Add(30 * time.Hour) } // past NextUpdate
	in.DBRepositories = []string{notDB.String(), brokenRef.String()}
	log := &recorder{}
	in.Log = log
	fake := &vulnscan.FakeScanner{}
	in.NewScanner = func(vulnscan.ScannerConfig) (vulnscan.Scanner, error) { return fake, nil }
	out, err := vulnscan.Run(t.Context(), in)
	if err != nil || len(fake.Scanned) != 1 {
		t.Fatalf("Run = %v (scanned %d)\n%s", err, len(fake.Scanned), log)
	}
	for _, want := range []string{
		notDB.String() + " is not a trivy-db artifact",
		"mirror " + brokenRef.String() + " failed",
		"using the cached DB built 2026-11-20T06:00:00Z",
	} {
		if !strings.Contains(log.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
	if strings.Contains(log.String(), "rate limited") {
		t.Errorf("a broken artifact reported as rate limiting:\n%s", log)
	}
	if db := out.Report.DB; db == nil || db.Source != "cache" {
		t.Errorf("DB info = %+v, want the cache", db)
	}
	after, err := os.ReadFile(filepath.Join(cache, "db", "trivy.db"))
	if err != nil || !bytes.Equal(before, after) {
		t.Errorf("the failed download changed the cached trivy.db (%v)", err)
	}
	if left, _ := filepath.Glob(filepath.Join(cache, ".db-download-*")); len(left) > 0 {
		t.Errorf("left behind %v", left)
	}
}

// authSeen records, per Host header, the path and Authorization header of
// every request a test registry got (auth "" for none).
type authSeen struct {
	mu     sync.Mutex
	byHost map[string][]seenRequest
}

type seenRequest struct{ path, auth string }

func (a *authSeen) record(r *http.Request) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.byHost == nil {
		a.byHost = map[string][]seenRequest{}
	}
	a.byHost[r.Host] = append(a.byHost[r.Host], seenRequest{r.URL.Path, r.Header.Get("Authorization")})
}

func (a *authSeen) of(host string) []seenRequest {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]seenRequest(nil), a.byHost[host]...)
}

func (a *authSeen) reset() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.byHost = nil
}

func basic(user, pass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
}

// TestDBMirrorCredentials: registry-username/-password are the image's and
// go to the image's registry only. The image is private on 127.0.0.1:PORT.
// The same registry server is also reached as localhost:PORT — another
// registry host as far as credentials go, the way a third-party mirror is
// — and a second registry on another port stands for a public mirror. The
// registries record every Authorization header per host: the other hosts
// never see the image's password (they are reached anonymously, or with
// what the Docker config keychain holds for them), and a private mirror on
// the image's own host is read with the image's credentials.
func TestDBMirrorCredentials(t *testing.T) {
	const (
		user, pass             = "ci-bot", "s3cret"
		mirrorUser, mirrorPass = "mirror-bot", "m1rr0r"
	)
	imageAuth, mirrorAuth := ocitest.BasicAuth(user, pass), ocitest.BasicAuth(mirrorUser, mirrorPass)
	var (
		seen    authSeen
		private atomic.Bool // open while the test pushes
		imgHost string      // 127.0.0.1:PORT
	)
	reg, err := ocitest.StartRegistry(func(next http.Handler) http.Handler {
		toImage, toMirror := imageAuth(next), mirrorAuth(next)
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			seen.record(r)
			switch {
			case !private.Load():
				next.ServeHTTP(w, r)
			case r.Host == imgHost: // the image's registry: all of it private
				toImage.ServeHTTP(w, r)
			case strings.HasPrefix(r.URL.Path, "/v2/private-mirror/"): // a private mirror elsewhere
				toMirror.ServeHTTP(w, r)
			default: // a public mirror
				next.ServeHTTP(w, r)
			}
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Close() })
	imgHost = reg.Host
	_, port, _ := net.SplitHostPort(reg.Host)
	otherName := "localhost:" + port // the same server under another registry name

	public, err := ocitest.StartRegistry(func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			seen.record(r)
			next.ServeHTTP(w, r)
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { public.Close() })

	art, err := scantest.Artifact(fixtureCache(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, repo := range []string{"mirror/trivy-db:2", "private-mirror/trivy-db:2"} {
		ref, _ := name.ParseReference(reg.Host + "/" + repo)
		if err := remote.Write(ref, art); err != nil {
			t.Fatal(err)
		}
	}
	image := pushFixtureImage(t, reg)
	private.Store(true)

	// runWith scans image (or, when it is empty, a repository) with the
	// image's credentials, downloading the DB from mirrors.
	runWith := func(t *testing.T, image string, keychain authn.Keychain, mirrors ...string) (vulnscan.Outputs, *recorder, error) {
		t.Helper()
		seen.reset()
		in := baseInputs(t, t.TempDir()) // no DB cached
		in.Offline = false
		in.Image, in.Scanners = image, []string{"vuln"}
		if image == "" {
			in.Path = copyRepo(t)
		}
		in.RegistryUsername, in.RegistryPassword = user, pass
		in.Keychain = keychain
		in.DBRepositories = mirrors
		in.Backoff = remote.Backoff{Duration: time.Millisecond, Factor: 1, Steps: 1}
		log := &recorder{}
		in.Log = log
		fake := &vulnscan.FakeScanner{}
		in.NewScanner = func(vulnscan.ScannerConfig) (vulnscan.Scanner, error) { return fake, nil }
		out, err := vulnscan.Run(t.Context(), in)
		if image != "" && err == nil && len(fake.Scanned) != 2 {
			t.Errorf("scanned %d platform(s) of the private image, want 2", len(fake.Scanned))
		}
		return out, log, err
	}
	run := func(t *testing.T, keychain authn.Keychain, mirrors ...string) (vulnscan.Outputs, *recorder, error) {
		t.Helper()
		return runWith(t, image, keychain, mirrors...)
	}
	// sawOnly fails unless host got requests and each carried Authorization
	// want ("" is none); the ping (GET /v2/) that finds out how the registry
	// authenticates is anonymous.
	sawOnly := func(t *testing.T, host, want string) {
		t.Helper()
		got := seen.of(host)
		if len(got) == 0 {
			t.Errorf("%s got no request", host)
		}
		for _, r := range got {
			if r.auth != want && !(r.path == "/v2/" && r.auth == "") {
				t.Errorf("%s got Authorization %q on %s, want %q (all: %+v)", host, r.auth, r.path, want, got)
				return
			}
		}
	}

	t.Run("other hosts never get the image's credentials", func(t *testing.T) {
		// What the Docker config holds: a login to localhost:PORT only.
		dockerConfig := registry.StaticKeychain(otherName, authn.FromConfig(authn.AuthConfig{Username: mirrorUser, Password: mirrorPass}))
		publicMirror := public.Host + "/aquasec/trivy-db:2" // answers 404: falls back
		privateMirror := otherName + "/private-mirror/trivy-db:2"
		out, log, err := run(t, dockerConfig, publicMirror, privateMirror)
		if err != nil {
			t.Fatalf("Run: %v\n%s", err, log)
		}
		if db := out.Report.DB; db == nil || db.Source != "download" || db.Repository != privateMirror {
			t.Errorf("DB info = %+v, want downloaded from %s", out.Report.DB, privateMirror)
		}
		sawOnly(t, public.Host, "")                          // anonymous
		sawOnly(t, otherName, basic(mirrorUser, mirrorPass)) // the keychain's, not the image's
		sawOnly(t, imgHost, basic(user, pass))               // the image itself
	})

	t.Run("a public mirror elsewhere is read anonymously", func(t *testing.T) {
		mirror := otherName + "/mirror/trivy-db:2"
		out, log, err := run(t, authn.NewMultiKeychain(), mirror) // no Docker config
		if err != nil {
			t.Fatalf("Run: %v\n%s", err, log)
		}
		if db := out.Report.DB; db == nil || db.Repository != mirror {
			t.Errorf("DB info = %+v, want downloaded from %s", out.Report.DB, mirror)
		}
		sawOnly(t, otherName, "")
	})

	t.Run("a private mirror elsewhere is refused without a login, with a hint", func(t *testing.T) {
		mirror := otherName + "/private-mirror/trivy-db:2"
		_, log, err := run(t, authn.NewMultiKeychain(), mirror)
		if err == nil {
			t.Fatalf("Run succeeded: a private mirror on another host was read\n%s", log)
		}
		for _, want := range []string{mirror, "UNAUTHORIZED", "only to the image's registry " + imgHost, "docker login " + otherName} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error lacks %q: %v", want, err)
			}
		}
		sawOnly(t, otherName, "")
	})

	t.Run("a private mirror on the image's host gets the credentials", func(t *testing.T) {
		mirror := imgHost + "/private-mirror/trivy-db:2"
		out, log, err := run(t, authn.NewMultiKeychain(), mirror)
		if err != nil {
			t.Fatalf("Run: %v\n%s", err, log)
		}
		if db := out.Report.DB; db == nil || db.Source != "download" || db.Repository != mirror {
			t.Errorf("DB info = %+v, want downloaded from %s", out.Report.DB, mirror)
		}
		sawOnly(t, imgHost, basic(user, pass))
		if got := seen.of(otherName); len(got) != 0 {
			t.Errorf("%s got %d request(s), want none", otherName, len(got))
		}
	})

	t.Run("a scan without an image gives no mirror the credentials", func(t *testing.T) {
		mirror := imgHost + "/private-mirror/trivy-db:2"
		_, log, err := runWith(t, "", authn.NewMultiKeychain(), mirror)
		if err == nil {
			t.Fatalf("Run succeeded: the credentials reached a mirror of a scan without an image\n%s", log)
		}
		if want := `input "image" is empty, so no mirror gets them`; !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
		sawOnly(t, imgHost, "")
	})
}
