package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/gantry-ci/gantry/internal/ghaction/actiontest"
	"github.com/gantry-ci/gantry/internal/ocitest"
	"github.com/gantry-ci/gantry/internal/signing"
)

func TestMain(m *testing.M) { actiontest.TestMain(m, main) }

// TestOutsideActions runs gantry-sign as a process from a shell or another
// CI would: no GITHUB_* at all. It signs a two-platform image with a key
// and verifies it with the public key; the outputs come on stdout, the log is
// plain on stderr without the key's password, and the exit code is 0.
func TestOutsideActions(t *testing.T) {
	reg, err := ocitest.StartRegistry(nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Close() })
	idx, err := ocitest.Base([]string{"linux/amd64", "linux/arm64"}, ocitest.BaseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	d, _ := idx.Digest()
	ref, _ := name.NewDigest(reg.Host + "/acme/app@" + d.String())
	if err := remote.WriteIndex(ref, idx); err != nil {
		t.Fatal(err)
	}
	const password = "correct-horse-battery-staple"
	priv, pub, err := signing.GenerateKeyPair([]byte(password))
	if err != nil {
		t.Fatal(err)
	}
	work := t.TempDir()
	key := filepath.Join(work, "cosign.key")
	os.WriteFile(key, priv, 0o600)
	pubKey := filepath.Join(work, "cosign.pub")
	os.WriteFile(pubKey, pub, 0o644)
	env := map[string]string{
		"INPUT_IMAGE":        ref.String(),
		"INPUT_KEY":          key,
		"INPUT_KEY-PASSWORD": password,
		"INPUT_REPORT-FILE":  filepath.Join(work, "report.json"),
		"INPUT_RELEASE-FILE": filepath.Join(work, "gantry-release.json"),
	}
	r := actiontest.Exec(t, "gantry-sign", env)
	if r.Code != 0 {
		t.Fatalf("exit %d, want 0\n%s", r.Code, r.Stderr)
	}
	outs := actiontest.StdoutOutputs(t, r)
	if outs["report-file"] != env["INPUT_REPORT-FILE"] {
		t.Errorf("outputs on stdout = %v", outs)
	}
	var signed []signing.SignedDigest
	if err := json.Unmarshal([]byte(outs["signed"]), &signed); err != nil {
		t.Fatalf("signed output %q: %v", outs["signed"], err)
	}
	if len(signed) != 3 {
		t.Errorf("signed %d digests, want the index and two platforms: %+v", len(signed), signed)
	}
	actiontest.Plain(t, r.Stderr, password)
	if !strings.Contains(r.Stderr, "### Gantry") {
		t.Errorf("the summary is not on stderr:\n%s", r.Stderr)
	}

	// Verify what was signed, with the public key, as JSON outputs.
	r = actiontest.Exec(t, "gantry-sign", map[string]string{
		"INPUT_IMAGE":        ref.String(),
		"INPUT_KEY":          pubKey,
		"INPUT_VERIFY":       "true",
		"INPUT_REPORT-FILE":  filepath.Join(work, "verify.json"),
		"INPUT_RELEASE-FILE": filepath.Join(work, "gantry-release.json"),
	}, "--output", "json")
	if r.Code != 0 {
		t.Fatalf("verify: exit %d, want 0\n%s", r.Code, r.Stderr)
	}
	var vouts map[string]string
	if err := json.Unmarshal([]byte(r.Stdout), &vouts); err != nil || vouts["verified"] != "true" {
		t.Errorf("verify outputs on stdout: %v, %v\n%s", vouts, err, r.Stdout)
	}

	t.Run("unwritable GITHUB_OUTPUT", func(t *testing.T) {
		env := map[string]string{"GITHUB_OUTPUT": actiontest.ReadOnlyOutput(t)}
		for k, v := range map[string]string{"INPUT_IMAGE": ref.String(), "INPUT_KEY": key, "INPUT_KEY-PASSWORD": password, "INPUT_REPORT-FILE": filepath.Join(t.TempDir(), "r.json"), "INPUT_RELEASE-FILE": filepath.Join(t.TempDir(), "g.json")} {
			env[k] = v
		}
		r := actiontest.Exec(t, "gantry-sign", env)
		if r.Code != 1 || !strings.Contains(r.Stdout, "::error::") || !strings.Contains(r.Stdout, "GITHUB_OUTPUT") {
			t.Errorf("exit %d, want 1 and an error naming GITHUB_OUTPUT:\n%s%s", r.Code, r.Stdout, r.Stderr)
		}
	})
}
