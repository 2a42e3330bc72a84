package vulnscan_test

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gantry-ci/gantry/internal/release"
	"github.com/gantry-ci/gantry/internal/testproc"
	"github.com/gantry-ci/gantry/internal/vulnscan"
)

// gitRepo is a real Git repository made with the git CLI.
type gitRepo struct {
	t    *testing.T
	dir  string
	tick int
}

func newGitRepo(t *testing.T) *gitRepo {
	t.Helper()
	r := &gitRepo{t: t, dir: t.TempDir()}
	r.git("init", "-q", "-b", "main")
	return r
}

// git runs git in the repository with a fixed identity and clock.
func (r *gitRepo) git(args ...string) string {
	r.t.Helper()
	cmd := exec.Command("git", append([]string{"-C", r.dir}, args...)...)
	date := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC).Add(time.Duration(r.tick) * 24 * time.Hour).Format(time.RFC3339)
	cmd.Env = append(os.Environ(),
		"GIT_AUTHOR_NAME=Dana Dev", "GIT_AUTHOR_EMAIL=dana@example.com", "GIT_AUTHOR_DATE="+date,
		"GIT_COMMITTER_NAME=Dana Dev", "GIT_COMMITTER_EMAIL=dana@example.com", "GIT_COMMITTER_DATE="+date,
		"GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		r.t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// commit writes files (an empty content removes the file) and commits
// them; it returns the commit's SHA.
func (r *gitRepo) commit(msg string, files map[string]string) string {
	r.t.Helper()
	r.tick++
	for name, content := range files {
		p := filepath.Join(r.dir, name)
		if content == "" {
			r.git("rm", "-q", name)
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			r.t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			r.t.Fatal(err)
		}
		r.git("add", name)
	}
	r.git("commit", "-q", "-m", msg)
	return r.git("rev-parse", "HEAD")
}

// randomFrom returns n random characters of alphabet: planted secrets are
// new in every run, so no allowlist or cache can know them.
func randomFrom(t testing.TB, alphabet string, n int) string {
	t.Helper()
	b := make([]byte, n)
	for i := range b {
		k, err := rand.Int(rand.Reader, big.NewInt(int64(len(alphabet))))
		if err != nil {
			t.Fatal(err)
		}
		b[i] = alphabet[k.Int64()]
	}
	return string(b)
}

func randomHex(t testing.TB, n int) string {
	t.Helper()
	b := make([]byte, n/2)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// historyFixture is a repository whose history holds secrets:
//
//	main:  c1 adds config/deploy.env with an AWS key ID and a Datadog API
//	       key (a Gantry rule) · c2 deletes it · c3 adds docs with a Slack
//	       webhook · c4 adds a Stripe key ignored until the far future ·
//	       c5 adds a GitHub token ignored by an entry that expired
//	side:  a GitLab token on a branch HEAD does not reach
type historyFixture struct {
	repo    *gitRepo
	secrets map[string]string // name -> value
	commits map[string]string // c1 … c5 -> SHA
}

func makeHistoryFixture(t *testing.T) historyFixture {
	t.Helper()
	const upper32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
	const alnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	f := historyFixture{repo: newGitRepo(t), commits: map[string]string{}, secrets: map[string]string{
		"aws":     "AKIA" + randomFrom(t, upper32, 16),
		"datadog": randomHex(t, 32),
		"slack":   "https://hooks.slack.com/services/T" + randomFrom(t, upper32, 8) + "/B" + randomFrom(t, upper32, 10) + "/" + randomFrom(t, alnum, 24),
		"stripe":  "sk_live_" + randomFrom(t, alnum, 32),
		"github":  "ghp_" + randomFrom(t, alnum, 36),
		"gitlab":  "glpat-" + randomFrom(t, alnum, 20),
	}}
	r := f.repo
	r.commit("app", map[string]string{"README.md": "# app\n", "server.js": "console.log('up')\n"})
	f.commits["c1"] = r.commit("deploy settings", map[string]string{"config/deploy.env": "# deploy\nREGION=eu-west-1\nAWS_ACCESS_KEY_ID=" + f.secrets["aws"] + "\nDATADOG_API_KEY=" + f.secrets["datadog"] + "\n"})
	f.commits["c2"] = r.commit("remove the secrets", map[string]string{"config/deploy.env": ""})
	f.commits["c3"] = r.commit("docs", map[string]string{"docs/alerts.md": "# Alerts\n\nPost to " + f.secrets["slack"] + " when it fails.\n"})
	r.git("checkout", "-q", "-b", "side")
	r.commit("side work", map[string]string{"ci/token.txt": "gitlab_token = \"" + f.secrets["gitlab"] + "\"\n"})
	r.git("checkout", "-q", "main")
	f.commits["c4"] = r.commit("billing", map[string]string{"billing/config.yaml": "stripe:\n  key: " + f.secrets["stripe"] + "\n"})
	f.commits["c5"] = r.commit("ci", map[string]string{"scripts/release.sh": "#!/bin/sh\nexport GITHUB_TOKEN=" + f.secrets["github"] + "\n"})
	return f
}

func historyInputs(t *testing.T, path string) vulnscan.Inputs {
	in := baseInputs(t, "")
	in.Scanners = []string{"history"}
	in.Path = path
	return in
}

// TestHistorySecrets scans a real repository's history: secrets committed
// and deleted since are found with commit, date, file, line and rule; a
// branch HEAD does not reach is not scanned; ignore entries by fingerprint
// ignore until they expire; the secret's value is in no output.
func TestHistorySecrets(t *testing.T) {
	t.Parallel()
	fx := makeHistoryFixture(t)
	in := historyInputs(t, fx.repo.dir)
	stripeFP := fx.commits["c4"] + ":billing/config.yaml:stripe-access-token:2"
	githubFP := fx.commits["c5"] + ":scripts/release.sh:github-pat:2"
	in.IgnoreFile = filepath.Join(t.TempDir(), "scan-ignore.yaml")
	os.WriteFile(in.IgnoreFile, []byte(fmt.Sprintf(`ignore:
  - fingerprint: %s
    reason: test key of a sandbox account, revoked (SEC-12)
    expires: 2099-12-31
  - fingerprint: %s
    reason: rotated, waiting for the history rewrite
    expires: 2026-01-31
`, stripeFP, githubFP)), 0o644)
	if _, err := release.Write(in.ReleaseFile, release.Record{Image: "r.example/app@sha256:" + strings.Repeat("a", 64), Digest: "sha256:" + strings.Repeat("a", 64)}); err != nil {
		t.Fatal(err)
	}
	log := &recorder{}
	in.Log = log

	out, err := vulnscan.Run(t.Context(), in)
	if !errors.Is(err, vulnscan.ErrGate) {
		t.Fatalf("Run = %v, want the gate to fail on the history's secrets\n%s", err, log)
	}
	rep := out.Report
	if len(rep.Targets) != 1 || rep.Targets[0].Kind != "history" || rep.Targets[0].History == nil {
		t.Fatalf("targets = %+v, want one history target", rep.Targets)
	}
	h := rep.Targets[0].History
	if h.Commits != 6 || h.Range != "HEAD" || h.Rules != "built-in" || h.RuleCount < 200 {
		t.Errorf("history = %+v, want 6 commits of HEAD with the built-in rules", h)
	}
	fs := rep.Targets[0].Findings
	byRule := map[string]vulnscan.Finding{}
	for _, f := range fs {
		if _, dup := byRule[f.ID]; dup {
			t.Errorf("rule %s found twice: %+v", f.ID, fs)
		}
		byRule[f.ID] = f
	}
	want := []struct {
		rule, commit, file string
		line               int
		date, gate         string
	}{
		{"aws-access-token", "c1", "config/deploy.env", 3, "2025-03-03T12:00:00Z", "fail"},
		{"gantry-datadog-api-key", "c1", "config/deploy.env", 4, "2025-03-03T12:00:00Z", "fail"},
		{"slack-webhook-url", "c3", "docs/alerts.md", 3, "2025-03-05T12:00:00Z", "fail"},
		{"stripe-access-token", "c4", "billing/config.yaml", 2, "2025-03-07T12:00:00Z", "ignored"},
		{"github-pat", "c5", "scripts/release.sh", 2, "2025-03-08T12:00:00Z", "fail"},
	}
	for _, w := range want {
		f, ok := byRule[w.rule]
		if !ok {
			t.Errorf("no %s finding (commit %s, %s:%d); found %v", w.rule, w.commit, w.file, w.line, slices.Collect(maps.Keys(byRule)))
			continue
		}
		if f.Commit != fx.commits[w.commit] || f.File != w.file || f.Line != w.line || f.Date != w.date || f.Author != "Dana Dev" || f.Kind != "secret" || f.Severity != "CRITICAL" || f.Gate != w.gate {
			t.Errorf("%s = %+v, want CRITICAL secret in %s (%s) %s:%d on %s by Dana Dev, gate %s", w.rule, f, w.commit, fx.commits[w.commit], w.file, w.line, w.date, w.gate)
		}
		if want := f.Commit + ":" + f.File + ":" + f.ID + ":" + fmt.Sprint(f.Line); f.Fingerprint != want {
			t.Errorf("%s fingerprint = %q, want %q", w.rule, f.Fingerprint, want)
		}
	}
	if len(fs) != len(want) {
		t.Errorf("%d findings, want %d (nothing from the side branch HEAD does not reach): %+v", len(fs), len(want), fs)
	}
	if f := byRule["stripe-access-token"]; f.Ignored == nil || !strings.Contains(f.Ignored.Reason, "SEC-12") {
		t.Errorf("the Stripe key is not ignored by its fingerprint entry: %+v", f)
	}
	if len(rep.Expired) != 1 || rep.Expired[0].Entry.Fingerprint != githubFP || !strings.Contains(log.String(), "expired on 2026-01-31") {
		t.Errorf("expired entries = %+v, want the GitHub token's (and a warning)\n%s", rep.Expired, log)
	}
	if rep.Gate.Verdict != "fail" || len(rep.Gate.Failed) != 4 || out.Critical != 4 {
		t.Errorf("gate = %+v, critical %d: want fail with 4 findings", rep.Gate, out.Critical)
	}
	if err == nil || !strings.Contains(err.Error(), "config/deploy.env:3 @ "+fx.commits["c1"][:12]) {
		t.Errorf("the gate's error does not say where: %v", err)
	}

	// Every output, for the values.
	summary := vulnscan.Summary(out)
	for _, want := range []string{"history " + fx.repo.dir, "6 commit(s)", "❌ fail", "github-pat", "Dana Dev", "rotate it first", "in every clone: rotate it."} {
		if !strings.Contains(summary, want) {
			t.Errorf("summary lacks %q:\n%s", want, summary)
		}
	}
	places := map[string]string{"log": log.String(), "summary": summary, "error": err.Error()}
	for _, f := range []string{out.JSONFile, out.SARIFFile, out.AttestationFile, in.ReleaseFile} {
		b, rerr := os.ReadFile(f)
		if rerr != nil {
			t.Fatal(rerr)
		}
		places[f] = string(b)
	}
	for name, value := range fx.secrets {
		for where, text := range places {
			if strings.Contains(text, value) {
				t.Errorf("the %s secret's value is in %s", name, where)
			}
		}
	}
	validateSARIF(t, out.SARIFFile)
	checkOneSeverityRule(t, out)
	var rec map[string]any
	readJSON(t, in.ReleaseFile, &rec)
	if scan, _ := rec["stages"].(map[string]any)["scan"].(map[string]any); scan == nil || !strings.HasPrefix(fmt.Sprint(scan["scanner"]), "gitleaks 8.") {
		t.Errorf("release record's scan section = %v, want gitleaks named", rec["stages"])
	}

	// A second run: the same SARIF fingerprints, so code scanning keeps
	// one alert per finding across pushes.
	in2 := historyInputs(t, fx.repo.dir)
	in2.IgnoreFile = in.IgnoreFile
	out2, _ := vulnscan.Run(t.Context(), in2)
	if a, b := sarifFingerprints(t, out.SARIFFile), sarifFingerprints(t, out2.SARIFFile); !slices.Equal(a, b) || len(a) != len(want) {
		t.Errorf("SARIF fingerprints differ between two runs (or are missing):\n%v\n%v", a, b)
	}
}

// sarifFingerprints are the results' Gantry fingerprints, sorted.
func sarifFingerprints(t *testing.T, file string) []string {
	t.Helper()
	var log struct {
		Runs []struct {
			Results []struct {
				PartialFingerprints map[string]string `json:"partialFingerprints"`
			} `json:"results"`
		} `json:"runs"`
	}
	readJSON(t, file, &log)
	var out []string
	for _, r := range log.Runs {
		for _, res := range r.Results {
			if fp := res.PartialFingerprints["gantryFinding/v1"]; fp != "" {
				out = append(out, fp)
			}
		}
	}
	slices.Sort(out)
	return out
}

// checkOneSeverityRule checks that the gate, the JSON report, the SARIF
// levels and the summary agree on which findings failed the gate.
func checkOneSeverityRule(t *testing.T, out vulnscan.Outputs) {
	t.Helper()
	var failedGate, failedJSON, failedSARIF []string
	for _, f := range out.Report.Gate.Failed {
		failedGate = append(failedGate, f.ID+" "+f.Where())
	}
	var rep vulnscan.Report
	readJSON(t, out.JSONFile, &rep)
	for _, tr := range rep.Targets {
		for _, f := range tr.Findings {
			if f.Gate == "" {
				t.Errorf("JSON finding %s has no gate decision", f.ID)
			}
			if f.Gate == "fail" {
				failedJSON = append(failedJSON, f.ID+" "+f.Where())
			}
		}
	}
	var log struct {
		Runs []struct {
			Results []struct {
				RuleID    string `json:"ruleId"`
				Level     string `json:"level"`
				Locations []struct {
					PhysicalLocation struct {
						ArtifactLocation struct {
							URI string `json:"uri"`
						} `json:"artifactLocation"`
					} `json:"physicalLocation"`
				} `json:"locations"`
				Properties map[string]any `json:"properties"`
			} `json:"results"`
		} `json:"runs"`
	}
	readJSON(t, out.SARIFFile, &log)
	for _, r := range log.Runs {
		for _, res := range r.Results {
			if (res.Level == "error") != (res.Properties["gate"] == "fail") {
				t.Errorf("SARIF result %s has level %s but gate %v", res.RuleID, res.Level, res.Properties["gate"])
			}
			if res.Level == "error" {
				failedSARIF = append(failedSARIF, res.RuleID+" "+res.Locations[0].PhysicalLocation.ArtifactLocation.URI)
			}
		}
	}
	summary := vulnscan.Summary(out)
	failedRows := strings.Count(summary, "| ❌ fail |")
	slices.Sort(failedGate)
	slices.Sort(failedJSON)
	if !slices.Equal(failedGate, failedJSON) || len(failedSARIF) != len(failedGate) {
		t.Errorf("gate failed %v; JSON says %v; SARIF errors %v", failedGate, failedJSON, failedSARIF)
	}
	// The summary marks each failed finding in its target's table, which
	// lists the first ten findings that are not ignored.
	wantRows := 0
	for _, tr := range out.Report.Targets {
		live := 0
		for _, f := range tr.Findings {
			if f.Ignored != nil {
				continue
			}
			if live < 10 && f.Gate == "fail" {
				wantRows++
			}
			live++
		}
	}
	if failedRows != wantRows || wantRows == 0 && len(failedGate) > 0 {
		t.Errorf("summary marks %d rows as failing the gate, want %d:\n%s", failedRows, wantRows, summary)
	}
}

// TestHistoryIncremental scans only the commits after history-since: a
// commit SHA (a push's "before"), a date, the null SHA of a new branch
// (everything), and refuses what cannot be scanned.
func TestHistoryIncremental(t *testing.T) {
	t.Parallel()
	fx := makeHistoryFixture(t)
	r := fx.repo
	before := r.git("rev-parse", "HEAD")
	newKey := "AKIA" + randomFrom(t, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 16)
	c6 := r.commit("new service", map[string]string{"svc/.env": "AWS_ACCESS_KEY_ID=" + newKey + "\n"})

	run := func(since string) (vulnscan.Outputs, error) {
		in := historyInputs(t, r.dir)
		in.HistorySince = since
		return vulnscan.Run(t.Context(), in)
	}
	out, err := run(before)
	if !errors.Is(err, vulnscan.ErrGate) {
		t.Fatalf("Run = %v, want the new commit's key to fail the gate", err)
	}
	fs := out.Report.Targets[0].Findings
	if len(fs) != 1 || fs[0].Commit != c6 || fs[0].ID != "aws-access-token" || fs[0].File != "svc/.env" {
		t.Errorf("since %s: findings %+v, want only the new commit's AWS key", before[:8], fs)
	}
	if h := out.Report.Targets[0].History; h.Commits != 1 || h.Range != before+"..HEAD" {
		t.Errorf("since %s: history = %+v, want 1 commit in before..HEAD", before[:8], h)
	}

	// A date: c5 (2025-03-08) and c6 (2025-03-09) on or after 2025-03-08.
	out, _ = run("2025-03-08")
	if h := out.Report.Targets[0].History; h.Commits != 2 || !strings.HasPrefix(h.Range, "--since=2025-03-08T00:00:00Z") {
		t.Errorf("since a date: history = %+v, want 2 commits", h)
	}
	// The null SHA GitHub sends for a new branch: every commit.
	out, _ = run(strings.Repeat("0", 40))
	if h := out.Report.Targets[0].History; h.Commits != 7 || h.Range != "HEAD" {
		t.Errorf("since the null SHA: history = %+v, want all 7 commits", h)
	}
	// No new commit: nothing to find, the gate passes.
	if out, err = run("HEAD"); err != nil || len(out.Report.Targets[0].Findings) != 0 || out.Verdict != "pass" {
		t.Errorf("since HEAD: %v, %+v", err, out.Report.Targets[0].Findings)
	}

	for _, tt := range []struct{ since, want string }{
		{"no-such-ref", `input "history-since": "no-such-ref" is not a commit of`},
		{"--all", `input "history-since": "--all" is neither a commit nor a date`},
	} {
		if _, err := run(tt.since); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("since %q: %v, want %q", tt.since, err, tt.want)
		}
	}

	// A shallow clone: the whole history is refused, an incremental range
	// inside the clone works.
	shallow := filepath.Join(t.TempDir(), "shallow")
	r.git("clone", "-q", "--depth=2", "file://"+r.dir, shallow)
	in := historyInputs(t, shallow)
	if _, err := vulnscan.Run(t.Context(), in); err == nil || !strings.Contains(err.Error(), "is a shallow clone: check it out with actions/checkout's fetch-depth: 0") {
		t.Errorf("shallow clone, whole history: %v", err)
	}
	in = historyInputs(t, shallow)
	in.HistorySince = before
	if out, err := vulnscan.Run(t.Context(), in); !errors.Is(err, vulnscan.ErrGate) || len(out.Report.Targets[0].Findings) != 1 {
		t.Errorf("shallow clone since its first commit: %v, %+v", err, out.Report)
	}
	// Not a repository at all.
	in = historyInputs(t, t.TempDir())
	if _, err := vulnscan.Run(t.Context(), in); err == nil || !strings.Contains(err.Error(), "is not in a Git repository") {
		t.Errorf("no repository: %v", err)
	}
}

// TestHistoryRuleFiles: the repository's .gitleaks.toml replaces the
// built-in rules, a broken one is named, and .gitleaksignore entries show
// as ignored (not dropped).
func TestHistoryRuleFiles(t *testing.T) {
	t.Parallel()
	fx := makeHistoryFixture(t)
	r := fx.repo
	slackFP := fx.commits["c3"] + ":docs/alerts.md:slack-webhook-url:3"
	os.WriteFile(filepath.Join(r.dir, ".gitleaksignore"), []byte("# reviewed\n"+slackFP+"\nscripts/release.sh:github-pat:2\n"), 0o644)
	out, err := vulnscan.Run(t.Context(), historyInputs(t, r.dir))
	if !errors.Is(err, vulnscan.ErrGate) {
		t.Fatal(err)
	}
	ignored := map[string]bool{}
	for _, f := range out.Report.Targets[0].Findings {
		if f.Ignored != nil && strings.Contains(f.Ignored.Reason, ".gitleaksignore") {
			ignored[f.ID] = true
		}
	}
	if !ignored["slack-webhook-url"] || !ignored["github-pat"] || len(ignored) != 2 {
		t.Errorf(".gitleaksignore ignored %v, want the Slack webhook (commit fingerprint) and the GitHub token (global fingerprint)", ignored)
	}

	os.WriteFile(filepath.Join(r.dir, ".gitleaks.toml"), []byte(`title = "only AWS"
[[rules]]
id = "aws-only"
description = "AWS key IDs"
regex = '''AKIA[A-Z2-7]{16}'''
keywords = ["akia"]
`), 0o644)
	out, _ = vulnscan.Run(t.Context(), historyInputs(t, r.dir))
	h := out.Report.Targets[0].History
	if !strings.HasSuffix(h.Rules, ".gitleaks.toml") || h.RuleCount != 1 || len(out.Report.Targets[0].Findings) != 1 || out.Report.Targets[0].Findings[0].ID != "aws-only" {
		t.Errorf("with .gitleaks.toml: history %+v, findings %+v", h, out.Report.Targets[0].Findings)
	}
	os.WriteFile(filepath.Join(r.dir, ".gitleaks.toml"), []byte("[[rules]]\nid = \"x\"\nregex = '''(unclosed'''\n"), 0o644)
	if _, err := vulnscan.Run(t.Context(), historyInputs(t, r.dir)); err == nil || !strings.Contains(err.Error(), ".gitleaks.toml") {
		t.Errorf("broken .gitleaks.toml: %v, want it named", err)
	}
	os.Remove(filepath.Join(r.dir, ".gitleaks.toml"))
	os.WriteFile(filepath.Join(r.dir, ".gitleaksignore"), []byte("not-a-fingerprint\n"), 0o644)
	if _, err := vulnscan.Run(t.Context(), historyInputs(t, r.dir)); err == nil || !strings.Contains(err.Error(), ".gitleaksignore line 1") {
		t.Errorf("bad .gitleaksignore: %v, want the file and line", err)
	}
}

// TestHistoryRules checks each of Gantry's own rules on a value of its
// kind, and that a value of another shape is not taken.
func TestHistoryRules(t *testing.T) {
	t.Parallel()
	awsSecret := randomFrom(t, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789/+", 40)
	kubeKey := "LS0tLS1CRUdJTiBSU0EgUFJJVkFURSBLRVktLS0tLQo" + randomFrom(t, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/", 120)
	files := map[string]string{
		"aws.ini":              "[default]\naws_secret_access_key = " + awsSecret + "\n",
		"monitoring.env":       "DD_API_KEY=" + randomHex(t, 32) + "\n",
		"fossa.yml":            "fossa_api_key: \"" + randomHex(t, 32) + "\"\n",
		"kubeconfig":           "users:\n- name: ci\n  user:\n    client-key-data: " + kubeKey + "\n",
		".docker/config.json":  "{\"auths\": {\"ghcr.io\": {\"auth\": \"" + randomFrom(t, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789", 28) + "\"}}}\n",
		"not-secrets/notes.md": "aws_secret_access_key = <your key here>\nDD_API_KEY=${DD_API_KEY}\n",
	}
	r := newGitRepo(t)
	r.commit("config", files)
	out, _ := vulnscan.Run(t.Context(), historyInputs(t, r.dir))
	got := map[string]string{}
	for _, f := range out.Report.Targets[0].Findings {
		if strings.HasPrefix(f.ID, "gantry-") {
			got[f.ID] = f.File
		}
	}
	want := map[string]string{
		"gantry-aws-secret-access-key": "aws.ini",
		"gantry-datadog-api-key":       "monitoring.env",
		"gantry-fossa-api-key":         "fossa.yml",
		"gantry-kubeconfig-client-key": "kubeconfig",
		"gantry-docker-config-auth":    ".docker/config.json",
	}
	for id, file := range want {
		if got[id] != file {
			t.Errorf("%s found in %q, want %s (all: %v)", id, got[id], file, got)
		}
	}
	if len(got) != len(want) {
		t.Errorf("Gantry's rules found %v, want exactly %v (placeholders are not secrets)", got, want)
	}
}

// TestHistorySameAsGitleaksCLI runs the gitleaks CLI of the same version,
// with the same rules and git log options, on the same repository: the
// same findings.
func TestHistorySameAsGitleaksCLI(t *testing.T) {
	t.Parallel()
	bin := testproc.Tool(t, "gitleaks")
	fx := makeHistoryFixture(t)
	out, _ := vulnscan.Run(t.Context(), historyInputs(t, fx.repo.dir))
	var ours []string
	for _, f := range out.Report.Targets[0].Findings {
		ours = append(ours, f.Fingerprint)
	}
	slices.Sort(ours)

	work := t.TempDir()
	rules := filepath.Join(work, "rules.toml")
	os.WriteFile(rules, []byte(vulnscan.GitleaksRules), 0o644)
	reportPath := filepath.Join(work, "report.json")
	cmd := exec.CommandContext(t.Context(), bin, "git", "--no-banner", "--redact", "--exit-code=0",
		"--config="+rules, "--log-opts="+vulnscan.HistoryLogOpts+" HEAD",
		"--report-format=json", "--report-path="+reportPath, fx.repo.dir)
	cmd.Dir = work
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("gitleaks: %v\n%s", err, b)
	}
	var cli []struct{ Fingerprint, RuleID string }
	readJSON(t, reportPath, &cli)
	var theirs []string
	for _, f := range cli {
		theirs = append(theirs, f.Fingerprint)
	}
	slices.Sort(theirs)
	if !slices.Equal(ours, theirs) || len(ours) < 5 {
		t.Errorf("gantry-scan found\n  %v\nthe gitleaks CLI\n  %v", ours, theirs)
	}
	if v, err := exec.Command(bin, "version").Output(); err != nil || strings.TrimSpace(string(v)) != "v"+out.Report.HistoryScanner.Version {
		t.Errorf("gitleaks CLI version %q (%v), gantry-scan's %s: they must be the same", v, err, out.Report.HistoryScanner.Version)
	}
}
