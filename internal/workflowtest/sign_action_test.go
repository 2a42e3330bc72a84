package workflowtest_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gantry-ci/gantry/internal/ocitest"
	"github.com/gantry-ci/gantry/internal/signing"
	"github.com/gantry-ci/gantry/internal/workflowtest"
)

// TestSignActionInAWorkflow runs testdata/workflows/sign-action.yml with
// act against a local registry: actions/sign signs and attests with a key
// file, verifies with the public key (outputs verified=true and a report),
// and a verify with another key fails with verified=false. The registry
// asks for basic auth; neither password shows in the log.
func TestSignActionInAWorkflow(t *testing.T) {
	t.Parallel()
	act := workflowtest.New(t)
	const regPassword = "act-registry-password-0815"
	reg := privateRegistry(t, regPassword)
	idx, err := ocitest.Base([]string{"linux/amd64", "linux/arm64"}, ocitest.BaseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	image := pushIndex(t, reg, regPassword, "acme/app", "1", idx)

	const password = "act-key-password-4711"
	dir := t.TempDir()
	keys := map[string]string{}
	for _, name := range []string{"cosign", "other"} {
		priv, pub, err := signing.GenerateKeyPair([]byte(password))
		if err != nil {
			t.Fatal(err)
		}
		keys[name+".key"] = filepath.Join(dir, name+".key")
		keys[name+".pub"] = filepath.Join(dir, name+".pub")
		write(t, keys[name+".key"], string(priv), 0o600)
		write(t, keys[name+".pub"], string(pub), 0o644)
	}
	sboms := map[string][]string{}
	for _, p := range []string{"linux/amd64", "linux/arm64"} {
		f := filepath.Join(dir, strings.ReplaceAll(p, "/", "-")+".spdx.json")
		write(t, f, `{"spdxVersion":"SPDX-2.3","SPDXID":"SPDXRef-DOCUMENT","name":"app","dataLicense":"CC0-1.0","documentNamespace":"https://gantry.dev/act","creationInfo":{"created":"2026-11-25T00:00:00Z","creators":["Tool: act-test"]}}`, 0o644)
		sboms[p] = []string{f}
	}
	sbomJSON, _ := json.Marshal(sboms)
	result := t.TempDir()

	log, err := act.Run(t.Context(), "push", "testdata/workflows/sign-action.yml", map[string]string{
		"IMAGE":             image,
		"KEY":               keys["cosign.key"],
		"PUB":               keys["cosign.pub"],
		"OTHER_PUB":         keys["other.pub"],
		"COSIGN_PASSWORD":   password,
		"SBOM_FILES":        string(sbomJSON),
		"RESULT":            result,
		"REGISTRY_PASSWORD": regPassword,
	})
	if err != nil {
		t.Fatalf("%v\n%s", err, log)
	}
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(result, name))
		if err != nil {
			t.Fatalf("the workflow did not hand over %s: %v\n%s", name, err, log)
		}
		return strings.TrimSpace(string(b))
	}
	var signed []signing.SignedDigest
	if err := json.Unmarshal([]byte(read("signed")), &signed); err != nil || len(signed) != 3 {
		t.Errorf("signed output %q (%v): want the index and two platforms", read("signed"), err)
	}
	for _, s := range signed {
		want := "provenance,signature"
		if s.Platform != "" {
			want = "provenance,sbom/spdx,signature"
		}
		if got := strings.Join(s.Types, ","); got != want {
			t.Errorf("signed on %s (%s): %s, want %s", s.Digest, s.Platform, got, want)
		}
	}
	if v := read("verified"); v != "true" {
		t.Errorf("verified output = %q, want true\n%s", v, log)
	}
	var rep signing.Report
	b, err := os.ReadFile(read("report"))
	if err != nil || json.Unmarshal(b, &rep) != nil || !rep.Verified || len(rep.Checks) != 2+2*3 {
		t.Errorf("verify report %s (%v): %s", read("report"), err, b)
	}
	if v, o := read("wrong-verified"), read("wrong-outcome"); v != "false" || o != "failure" {
		t.Errorf("verify with another key: verified=%q outcome=%q, want false and failure", v, o)
	}
	if !strings.Contains(log, "does not verify with the trusted key") {
		t.Errorf("the failed verify does not say why in the log")
	}
	for _, line := range strings.Split(log, "\n") {
		if (strings.Contains(line, password) || strings.Contains(line, regPassword)) && !strings.Contains(line, "add-mask") {
			t.Errorf("a password appears in the workflow log: %s", line)
		}
	}
}
