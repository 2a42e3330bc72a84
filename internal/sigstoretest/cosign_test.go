package sigstoretest

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gantry-ci/gantry/internal/ocitest"
	"github.com/gantry-ci/gantry/internal/testproc"
)

// pushImage pushes a small image to a fresh registry and returns it by
// digest.
func pushImage(t *testing.T) string {
	t.Helper()
	reg, err := ocitest.StartRegistry(nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Close() })
	_, idx, err := ocitest.PushBase(t.Context(), reg.Host, "acme/prompt-builder:v1.2.3", []string{"linux/amd64"}, ocitest.BaseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	d, err := idx.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return reg.Host + "/acme/prompt-builder@" + d.String()
}

// cosign runs the cosign CLI offline: its own HOME and TUF cache, nothing
// from the test's environment.
type cosign struct {
	bin, home string
	env       []string // added to the environment
}

func newCosign(t *testing.T) cosign {
	return cosign{bin: testproc.Tool(t, "cosign"), home: t.TempDir()}
}

func (c cosign) run(t *testing.T, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.bin, args...)
	cmd.Env = []string{
		"HOME=" + c.home,
		"TMPDIR=" + c.home,
		"PATH=/usr/bin:/bin",
		"TUF_ROOT=" + filepath.Join(c.home, "tuf"),
	}
	cmd.Env = append(cmd.Env, c.env...)
	began := time.Now()
	out, err := cmd.CombinedOutput()
	t.Logf("cosign %s: %v in %v", args[0], err, time.Since(began).Round(time.Millisecond))
	return string(out), err
}

func (c cosign) mustRun(t *testing.T, args ...string) string {
	t.Helper()
	out, err := c.run(t, args...)
	if err != nil {
		t.Fatalf("cosign %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// mustFail runs cosign, expecting it to fail with a message containing
// want.
func (c cosign) mustFail(t *testing.T, want string, args ...string) {
	t.Helper()
	out, err := c.run(t, args...)
	if err == nil {
		t.Fatalf("cosign %s succeeded, want a failure\n%s", strings.Join(args, " "), out)
	}
	if !strings.Contains(out, want) {
		t.Errorf("cosign %s failed without %q:\n%s", args[0], want, out)
	}
}

func startTimed(t *testing.T, opts Options) *Sigstore {
	t.Helper()
	began := time.Now()
	s := Start(t, opts)
	t.Logf("Start(%+v) took %v", opts, time.Since(began).Round(time.Millisecond))
	return s
}

func TestCosignKeyless(t *testing.T) {
	t.Parallel()
	image := pushImage(t)
	cos := newCosign(t)
	s := startTimed(t, Options{})

	cos.mustRun(t, "sign", "--signing-config", s.SigningConfig, "--identity-token", s.Token(t), "--yes", image)

	verify := func(identity, issuer string) []string {
		return []string{"verify", "--trusted-root", s.TrustedRoot,
			"--certificate-identity", identity, "--certificate-oidc-issuer", issuer,
			"--insecure-ignore-tlog=true", "--insecure-ignore-sct", image}
	}
	// Fulcio's GitHub extensions are in the certificate too.
	out := cos.mustRun(t, append(verify(s.Identity(), s.IssuerURL),
		"--certificate-github-workflow-repository", "acme/Prompt-Builder",
		"--certificate-github-workflow-ref", "refs/tags/v1.2.3",
		"--certificate-github-workflow-trigger", "push")...)
	if !strings.Contains(out, "verified using trusted certificate authority certificates") {
		t.Errorf("verify did not check the certificate:\n%s", out)
	}

	// cosign's own GitHub Actions provider gets its token from the stand-in
	// for GitHub's token endpoint (an image signed by no one else).
	image2 := pushImage(t)
	url, requestToken := s.ActionsTokenServer(t)
	actions := cos
	actions.env = []string{"ACTIONS_ID_TOKEN_REQUEST_URL=" + url, "ACTIONS_ID_TOKEN_REQUEST_TOKEN=" + requestToken}
	actions.mustRun(t, "sign", "--signing-config", s.SigningConfig, "--yes", image2)
	cos.mustRun(t, "verify", "--trusted-root", s.TrustedRoot,
		"--certificate-identity", s.Identity(), "--certificate-oidc-issuer", s.IssuerURL,
		"--insecure-ignore-tlog=true", "--insecure-ignore-sct", image2)

	other := "https://github.com/acme/Prompt-Builder/.github/workflows/ci.yml@refs/heads/main"
	cos.mustFail(t, "expected SAN value", verify(other, s.IssuerURL)...)
	cos.mustFail(t, "expected issuer value", verify(s.Identity(), "https://token.actions.githubusercontent.com")...)
}

func TestCosignKeylessTLog(t *testing.T) {
	t.Parallel()
	image := pushImage(t)
	cos := newCosign(t)
	s := startTimed(t, Options{TLog: true})
	if s.RekorURL == "" || !strings.HasSuffix(s.TSAURL, "/api/v1/timestamp") {
		t.Fatalf("RekorURL = %q, TSAURL = %q", s.RekorURL, s.TSAURL)
	}

	cos.mustRun(t, "sign", "--signing-config", s.SigningConfig, "--identity-token", s.Token(t), "--yes", image)
	verify := func(trustedRoot string) []string {
		return []string{"verify", "--trusted-root", trustedRoot,
			"--certificate-identity", s.Identity(), "--certificate-oidc-issuer", s.IssuerURL,
			"--insecure-ignore-sct", image}
	}
	out := cos.mustRun(t, verify(s.TrustedRoot)...)
	if !strings.Contains(out, "transparency log was verified") {
		t.Errorf("verify did not check the log:\n%s", out)
	}

	// The log and the timestamp are really checked: without either in the
	// trusted root, verification fails.
	for part, want := range map[string]string{
		"tlogs":                "not enough verified log entries from transparency log",
		"timestampAuthorities": "threshold not met",
	} {
		cos.mustFail(t, want, verify(trustedRootWithout(t, s.TrustedRoot, part))...)
	}
}

// trustedRootWithout writes a copy of the trusted root at path with an
// empty list named part.
func trustedRootWithout(t *testing.T, path, part string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var tr map[string]any
	if err := json.Unmarshal(b, &tr); err != nil {
		t.Fatal(err)
	}
	if _, ok := tr[part]; !ok {
		t.Fatalf("trusted root has no %s", part)
	}
	tr[part] = []any{}
	if b, err = json.Marshal(tr); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "trusted_root.json")
	if err := os.WriteFile(out, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestStartIsolated runs two Sigstores with logs side by side (ports,
// Fulcio sockets, metrics ports, the timestamp authorities' fixed metrics
// port): each has its own CA, log and authority, so one's signature does
// not verify against the other's trusted root.
func TestStartIsolated(t *testing.T) {
	t.Parallel()
	image := pushImage(t)
	cos := newCosign(t)
	a := startTimed(t, Options{TLog: true})
	bOpts := Options{TLog: true}
	if unshare, _ := netnsWrapper(); unshare == "" {
		// Timestamp authorities then take turns: b's would wait for a's.
		t.Log("no network namespaces here: the second Sigstore runs without a log")
		bOpts.TLog = false
	}
	b := startTimed(t, bOpts)
	if a.FulcioURL == b.FulcioURL || a.RekorURL == b.RekorURL && bOpts.TLog || a.TSAURL == b.TSAURL && bOpts.TLog {
		t.Fatalf("shared servers: %+v and %+v", a, b)
	}

	cos.mustRun(t, "sign", "--signing-config", a.SigningConfig, "--identity-token", a.Token(t), "--yes", image)
	verify := func(s *Sigstore) []string {
		return []string{"verify", "--trusted-root", s.TrustedRoot,
			"--certificate-identity", a.Identity(), "--certificate-oidc-issuer", a.IssuerURL,
			"--insecure-ignore-sct", image}
	}
	cos.mustRun(t, verify(a)...)
	cos.mustFail(t, "not enough verified log entries", verify(b)...)
}
