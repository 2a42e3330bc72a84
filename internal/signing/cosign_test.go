package signing_test

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
	"github.com/gantry-ci/gantry/internal/signing"
	"github.com/gantry-ci/gantry/internal/testproc"
)

// cosignCLI runs the real cosign v3 CLI offline (no TUF, no public
// Sigstore) and returns its combined output.
type cosignCLI struct {
	bin string
	env []string
}

func newCosign(t *testing.T) cosignCLI {
	home := t.TempDir()
	return cosignCLI{bin: testproc.Tool(t, "cosign"), env: []string{
		"HOME=" + home, "PATH=" + os.Getenv("PATH"), "TUF_ROOT=" + filepath.Join(home, "tuf"),
		"SIGSTORE_NO_CACHE=true",
	}}
}

func (c cosignCLI) run(t *testing.T, extraEnv []string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.bin, args...)
	cmd.Env = append(append([]string{}, c.env...), extraEnv...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func (c cosignCLI) must(t *testing.T, extraEnv []string, args ...string) string {
	t.Helper()
	out, err := c.run(t, extraEnv, args...)
	if err != nil {
		t.Fatalf("cosign %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// TestCosignVerifiesWhatGantrySigns signs with a key gantry generated and
// with one `cosign generate-key-pair` wrote, and has the cosign CLI verify
// the signatures and every attestation type.
func TestCosignVerifiesWhatGantrySigns(t *testing.T) {
	f := newFixture(t)
	cosign := newCosign(t)

	// A key pair from the cosign CLI, used by gantry to sign.
	keyDir := t.TempDir()
	pwEnv := []string{"COSIGN_PASSWORD=" + f.password}
	cmd := exec.CommandContext(t.Context(), cosign.bin, "generate-key-pair")
	cmd.Dir, cmd.Env = keyDir, append(append([]string{}, cosign.env...), pwEnv...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("cosign generate-key-pair: %v\n%s", err, out)
	}
	cosignKey, cosignPub := filepath.Join(keyDir, "cosign.key"), filepath.Join(keyDir, "cosign.pub")

	for _, tc := range []struct{ name, key, pub string }{
		{"gantry key", f.key, f.pub},
		{"cosign generate-key-pair key", cosignKey, cosignPub},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Each key signs its own image, so one key's signatures cannot
			// make the other's checks pass.
			image, plat := pushImage(t, f.reg, "acme/"+strings.ReplaceAll(tc.name, " ", "-")+":1", ocitest.BaseOptions{Docker: tc.key == cosignKey})
			if _, err := signing.Run(t.Context(), f.keyInputsFor(image, tc.key, "sbom", "provenance", "scan")); err != nil {
				t.Fatal(err)
			}
			amd := image[:strings.Index(image, "@")] + "@" + plat["linux/amd64"]
			for _, ref := range []string{image, amd} {
				out := cosign.must(t, nil, "verify", "--key", tc.pub, "--insecure-ignore-tlog=true", ref)
				if !strings.Contains(out, "sha256:") {
					t.Errorf("cosign verify %s printed no payload:\n%s", ref, out)
				}
			}
			for _, c := range []struct{ ref, typ string }{
				{amd, "spdxjson"}, {amd, "cyclonedx"}, {amd, "slsaprovenance1"}, {image, "slsaprovenance1"}, {image, "vuln"},
			} {
				out := cosign.must(t, nil, "verify-attestation", "--key", tc.pub, "--insecure-ignore-tlog=true", "--type", c.typ, c.ref)
				if c.typ == "slsaprovenance1" {
					checkProvenance(t, out, c.ref)
				}
			}
			// No SBOM was attested on the index: cosign must say so.
			if out, err := cosign.run(t, nil, "verify-attestation", "--key", tc.pub, "--insecure-ignore-tlog=true", "--type", "spdxjson", image); err == nil || !strings.Contains(out, "none of the attestations matched the predicate type") {
				t.Errorf("cosign verify-attestation --type spdxjson on the index: %v\n%s", err, out)
			}
			// The other key must not verify: the cross-check can fail.
			other := f.pub
			if tc.pub == f.pub {
				other = cosignPub
			}
			if out, err := cosign.run(t, nil, "verify", "--key", other, "--insecure-ignore-tlog=true", image); err == nil {
				t.Errorf("cosign verify with another key passed:\n%s", out)
			}
		})
	}
}

// checkProvenance reads the statement cosign verify-attestation printed and
// checks that it is about ref and describes the workflow run.
func checkProvenance(t *testing.T, out, ref string) {
	t.Helper()
	var env struct {
		Payload []byte `json:"payload"`
	}
	line := out[strings.Index(out, "{"):]
	line = line[:strings.Index(line, "\n")]
	if err := json.Unmarshal([]byte(line), &env); err != nil {
		t.Fatalf("cosign printed no DSSE envelope: %v\n%s", err, out)
	}
	var st struct {
		Subject []struct {
			Digest map[string]string `json:"digest"`
		} `json:"subject"`
		Predicate struct {
			BuildDefinition struct {
				BuildType            string `json:"buildType"`
				ResolvedDependencies []struct {
					URI    string            `json:"uri"`
					Digest map[string]string `json:"digest"`
				} `json:"resolvedDependencies"`
			} `json:"buildDefinition"`
			RunDetails struct {
				Builder struct {
					ID string `json:"id"`
				} `json:"builder"`
				Metadata struct {
					InvocationID string `json:"invocationId"`
				} `json:"metadata"`
			} `json:"runDetails"`
		} `json:"predicate"`
	}
	if err := json.Unmarshal(env.Payload, &st); err != nil {
		t.Fatal(err)
	}
	p := st.Predicate
	if len(st.Subject) != 1 || "sha256:"+st.Subject[0].Digest["sha256"] != ref[strings.Index(ref, "@")+1:] {
		t.Errorf("provenance subject %+v, want %s", st.Subject, ref)
	}
	if p.RunDetails.Builder.ID != "https://github.com/acme/app/.github/workflows/release.yml@refs/heads/main" ||
		p.RunDetails.Metadata.InvocationID != "https://github.com/acme/app/actions/runs/4242/attempts/2" ||
		p.BuildDefinition.BuildType != signing.BuildType ||
		len(p.BuildDefinition.ResolvedDependencies) != 1 ||
		p.BuildDefinition.ResolvedDependencies[0].Digest["gitCommit"] != "9a8b7c6d5e4f30211a2b3c4d5e6f708192a3b4c5" ||
		p.BuildDefinition.ResolvedDependencies[0].URI != "git+https://github.com/acme/app@refs/heads/main" {
		t.Errorf("provenance does not describe the run: %s", env.Payload)
	}
}

// keyInputsFor signs image with key (the fixture's password).
func (f *fixture) keyInputsFor(image, key string, attest ...string) signing.Inputs {
	return f.keyInputs(image, key, f.password, attest...)
}

// TestGantryVerifiesWhatCosignSigns has the cosign CLI sign (recursively)
// and attest an SBOM, and gantry verify it, then fail it for a missing
// attestation and a wrong key.
func TestGantryVerifiesWhatCosignSigns(t *testing.T) {
	f := newFixture(t)
	cosign := newCosign(t)
	pwEnv := []string{"COSIGN_PASSWORD=" + f.password}
	image, plat := f.image, f.plat
	repo, _, _ := strings.Cut(image, "@")
	cosign.must(t, pwEnv, "sign", "--key", f.key, "--use-signing-config=false", "--tlog-upload=false", "--recursive", "--yes", image)
	for _, p := range platforms {
		sbom := filepath.Join(f.dir, "sbom", strings.ReplaceAll(p, "/", "-")+".spdx.json")
		cosign.must(t, pwEnv, "attest", "--key", f.key, "--use-signing-config=false", "--tlog-upload=false", "--yes",
			"--type", "spdxjson", "--predicate", sbom, repo+"@"+plat[p])
	}

	rep, err := signing.Verify(t.Context(), image, keyPolicy(f.pub, "sbom"))
	if err != nil {
		t.Fatalf("gantry does not verify what cosign signed: %v", err)
	}
	if len(rep.Checks) != 1+2*2 {
		t.Errorf("%d checks, want 5: %+v", len(rep.Checks), rep.Checks)
	}
	for _, c := range rep.Checks {
		if c.What == "sbom" && !strings.HasPrefix(c.Reason, "spdx, signed by key") {
			t.Errorf("sbom check %+v", c)
		}
	}

	_, err = signing.Verify(t.Context(), image, keyPolicy(f.pub, "provenance"))
	if err == nil || !strings.Contains(err.Error(), "no provenance") {
		t.Errorf("verify requiring provenance cosign never attested: %v", err)
	}
	_, otherPub := gantryKeyPair(t, f.dir, "other", "pw")
	_, err = signing.Verify(t.Context(), image, keyPolicy(otherPub))
	if err == nil || !strings.Contains(err.Error(), "does not verify with the trusted key") {
		t.Errorf("verify with another key: %v", err)
	}
}

// TestGantryVerifiesLegacyCosignSignatures reads what cosign writes with
// --new-bundle-format=false (and cosign v2 wrote): signatures and
// attestations under the sha256-<hex>.sig and .att tags.
func TestGantryVerifiesLegacyCosignSignatures(t *testing.T) {
	f := newFixture(t)
	cosign := newCosign(t)
	pwEnv := []string{"COSIGN_PASSWORD=" + f.password}
	legacy := []string{"--new-bundle-format=false", "--key", f.key, "--use-signing-config=false", "--tlog-upload=false", "--yes"}
	repo, _, _ := strings.Cut(f.image, "@")
	cosign.must(t, pwEnv, append(append([]string{"sign"}, legacy...), "--recursive", f.image)...)
	for _, p := range platforms {
		sbom := filepath.Join(f.dir, "sbom", strings.ReplaceAll(p, "/", "-")+".cyclonedx.json")
		cosign.must(t, pwEnv, append(append([]string{"attest"}, legacy...), "--type", "cyclonedx", "--predicate", sbom, repo+"@"+f.plat[p])...)
	}
	if got := bundleTypes(t, f.image); len(got) != 0 {
		t.Fatalf("cosign wrote bundles %v, want the legacy tags only", got)
	}

	rep, err := signing.Verify(t.Context(), f.image, keyPolicy(f.pub, "sbom"))
	if err != nil {
		t.Fatalf("gantry does not verify cosign's legacy signatures: %v", err)
	}
	for _, c := range rep.Checks {
		tag := "(legacy .sig tag)"
		if c.What == "sbom" {
			tag = "(legacy .att tag)"
		}
		if !strings.Contains(c.Reason, tag) {
			t.Errorf("check %+v does not say it read %s", c, tag)
		}
	}
	if len(rep.Checks) != 5 {
		t.Errorf("%d checks, want 5", len(rep.Checks))
	}
	_, otherPub := gantryKeyPair(t, f.dir, "other", "pw")
	_, err = signing.Verify(t.Context(), f.image, keyPolicy(otherPub))
	want := "in the legacy tag " + strings.Replace(f.image[strings.Index(f.image, "@")+1:], ":", "-", 1) + ".sig"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("verify legacy signatures with another key: %v, want it to name %s", err, want)
	}
	t.Logf("with another key: %v", err)
}
