package signing_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gantry-ci/gantry/internal/signing"
	"github.com/gantry-ci/gantry/internal/sigstoretest"
)

// releaseFiles writes what a release signs: a checksums file and an
// archive, plus a file that must not be signed.
func releaseFiles(t *testing.T) (dir string) {
	dir = t.TempDir()
	writeFile(t, filepath.Join(dir, "dist", "checksums.txt"), "4f6d0c1ab1e0c2b1f9d8a6e5c4b3a2918e7d6c5b4f6d0c1ab1e0c2b1f9d8a6e5  gantry_linux_amd64.tar.gz\n")
	writeFile(t, filepath.Join(dir, "dist", "gantry_linux_amd64.tar.gz"), strings.Repeat("not really a tarball\n", 1000))
	writeFile(t, filepath.Join(dir, "notes.md"), "# not signed\n")
	return dir
}

// bundlesIn lists the *.sigstore.json files under dir.
func bundlesIn(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(p, signing.BundleSuffix) {
			out = append(out, p)
		}
		return nil
	})
	return out
}

// TestSignFilesWithKey signs files with a key (one as a path, the others
// by pattern), and checks that gantry and `cosign verify-blob` accept each
// bundle, and that both refuse a file changed after signing.
func TestSignFilesWithKey(t *testing.T) {
	dir := releaseFiles(t)
	key, pub := gantryKeyPair(t, t.TempDir(), "release", "pw")
	cosign := newCosign(t)
	in := signing.Inputs{
		Files: []string{"dist/checksums.txt", "dist/*.tar.gz", "dist/*"}, Key: key, KeyPassword: "pw",
		Keyless: "auto", TlogUpload: "auto", Dir: dir, ReportFile: "sign.json", ReleaseFile: "gantry-release.json",
		Jobs: 4, Timeout: time.Minute,
	}
	out, err := signing.Run(t.Context(), in)
	if err != nil {
		t.Fatal(err)
	}
	files := []string{filepath.Join(dir, "dist", "checksums.txt"), filepath.Join(dir, "dist", "gantry_linux_amd64.tar.gz")}
	want := signing.Paths{files[0] + ".sigstore.json", files[1] + ".sigstore.json"}
	if !slices.Equal(out.Bundles, want) {
		t.Errorf("bundles output %v, want %v (each file once, in input order)", out.Bundles, want)
	}
	if got := bundlesIn(t, dir); !slices.Equal(got, []string(want)) {
		t.Errorf("bundles on disk: %v", got)
	}
	if len(out.Report.Files) != 2 || out.Report.Files[0].SHA256 == "" || out.ReportFile == "" || out.Report.Mode != "sign" {
		t.Errorf("report %+v, file %q", out.Report, out.ReportFile)
	}
	if md := signing.Summary(out); !strings.Contains(md, "2 file(s) signed with key sha256:") || !strings.Contains(md, "checksums.txt.sigstore.json") {
		t.Errorf("summary:\n%s", md)
	}

	// A second run over dist/* signs the same two files, not the bundles.
	if out2, err := signing.Run(t.Context(), in); err != nil || !slices.Equal(out2.Bundles, want) {
		t.Errorf("second run: %v, bundles %v", err, out2.Bundles)
	}

	for _, f := range files {
		cosign.must(t, nil, "verify-blob", "--key", pub, "--bundle", f+".sigstore.json", "--insecure-ignore-tlog=true", f)
	}
	rep, err := signing.VerifyFiles(t.Context(), files, signing.Policy{Key: pub})
	if err != nil || !rep.Verified || len(rep.Checks) != 2 {
		t.Fatalf("VerifyFiles: %v, %+v", err, rep)
	}
	for _, c := range rep.Checks {
		if !c.Passed || !strings.HasPrefix(c.Reason, "signed by key sha256:") || !strings.HasPrefix(c.Digest, "sha256:") {
			t.Errorf("check %+v", c)
		}
	}

	// verify: true through Run, the way the action does.
	vin := signing.Inputs{Files: []string{"dist/*"}, Verify: true, Key: pub, Dir: dir, Timeout: time.Minute}
	vout, err := signing.Run(t.Context(), vin)
	if err != nil || !vout.Verified || len(vout.Report.Checks) != 2 {
		t.Errorf("Run verify: %v, %+v", err, vout.Report)
	}

	// Change a file after signing: both verifiers refuse it.
	writeFile(t, files[0], "0000000000000000000000000000000000000000000000000000000000000000  evil.tar.gz\n")
	if out, err := cosign.run(t, nil, "verify-blob", "--key", pub, "--bundle", files[0]+".sigstore.json", "--insecure-ignore-tlog=true", files[0]); err == nil {
		t.Errorf("cosign verify-blob accepted a changed file:\n%s", out)
	}
	vout, err = signing.Run(t.Context(), vin)
	if !signing.IsVerificationError(err) || vout.Verified || !strings.Contains(err.Error(), "the file is not what was signed: its sha256 is") {
		t.Errorf("verify a changed file: %v", err)
	}
	if len(vout.Report.Checks) != 2 || vout.Report.Checks[1].Passed != true {
		t.Errorf("the unchanged file's check: %+v", vout.Report.Checks)
	}
	if md := signing.Summary(vout); !strings.Contains(md, "### Gantry verify: NOT verified") || !strings.Contains(md, "| `"+files[0]+"` |") {
		t.Errorf("verify summary:\n%s", md)
	}

	// Another key, a bundle of another file, a missing bundle.
	_, otherPub := gantryKeyPair(t, t.TempDir(), "other", "pw")
	if _, err := signing.VerifyFiles(t.Context(), files[1:], signing.Policy{Key: otherPub}); err == nil || !strings.Contains(err.Error(), "does not verify with the trusted key") {
		t.Errorf("verify with another key: %v", err)
	}
	moved := filepath.Join(dir, "moved.txt")
	writeFile(t, moved, "something else\n")
	b, _ := os.ReadFile(files[1] + ".sigstore.json")
	writeFile(t, moved+".sigstore.json", string(b))
	if _, err := signing.VerifyFiles(t.Context(), []string{moved}, signing.Policy{Key: pub}); err == nil || !strings.Contains(err.Error(), "the bundle is another file's") {
		t.Errorf("verify with another file's bundle: %v", err)
	}
	if _, err := signing.VerifyFiles(t.Context(), []string{filepath.Join(dir, "notes.md")}, signing.Policy{Key: pub}); err == nil || !strings.Contains(err.Error(), "no bundle: "+filepath.Join(dir, "notes.md.sigstore.json")+" does not exist") {
		t.Errorf("verify without a bundle: %v", err)
	}
}

// TestGantryVerifiesCosignSignBlob: gantry verifies what `cosign sign-blob
// --bundle` wrote.
func TestGantryVerifiesCosignSignBlob(t *testing.T) {
	dir := releaseFiles(t)
	key, pub := gantryKeyPair(t, dir, "release", "pw")
	cosign := newCosign(t)
	f := filepath.Join(dir, "dist", "checksums.txt")
	cosign.must(t, []string{"COSIGN_PASSWORD=pw"}, "sign-blob", "--key", key, "--bundle", f+".sigstore.json",
		"--use-signing-config=false", "--tlog-upload=false", "--yes", f)
	rep, err := signing.VerifyFiles(t.Context(), []string{f}, signing.Policy{Key: pub})
	if err != nil || !rep.Verified {
		t.Fatalf("gantry does not verify cosign sign-blob's bundle: %v", err)
	}
}

// TestSignFilesKeyless signs a checksums file keyless against a private
// Sigstore with Rekor v2 and a timestamp authority, as Gantry's release
// does, and verifies it with gantry and `cosign verify-blob` by identity
// and source repository.
func TestSignFilesKeyless(t *testing.T) {
	s := sigstoretest.Start(t, sigstoretest.Options{TLog: true})
	s.Claims = sigstoretest.ReusableWorkflowClaims("gantry-ci/gantry/.github/workflows/release.yml@refs/tags/v1.4.0", "gantry-ci/gantry", "refs/tags/v1.4.0")
	url, reqToken := s.ActionsTokenServer(t)
	dir := releaseFiles(t)
	cosign := newCosign(t)
	out, err := signing.Run(t.Context(), signing.Inputs{
		Files: []string{"dist/checksums.txt"}, Keyless: "auto", TlogUpload: "auto",
		SigningConfig: s.SigningConfig, TrustedRoot: s.TrustedRoot,
		TokenRequestURL: url, TokenRequestToken: reqToken, Dir: dir, Jobs: 4, Timeout: 2 * time.Minute,
	})
	if err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(dir, "dist", "checksums.txt")
	if !slices.Equal(out.Bundles, signing.Paths{f + ".sigstore.json"}) || !strings.HasPrefix(out.Report.Signer, "keyless (Fulcio ") {
		t.Fatalf("bundles %v, signer %q", out.Bundles, out.Report.Signer)
	}
	args := func(repo string) []string {
		return []string{"verify-blob", "--bundle", f + ".sigstore.json", "--trusted-root", s.TrustedRoot,
			"--certificate-identity", s.Identity(), "--certificate-oidc-issuer", s.IssuerURL,
			"--certificate-github-workflow-repository", repo, "--insecure-ignore-sct", f}
	}
	out2 := cosign.must(t, nil, args("gantry-ci/gantry")...)
	t.Logf("cosign verify-blob: %s", strings.TrimSpace(out2))
	if o, err := cosign.run(t, nil, args("acme/gantry")...); err == nil || !strings.Contains(o, "acme/gantry") {
		t.Errorf("cosign verify-blob with another repository: %v\n%s", err, o)
	} else {
		t.Logf("cosign verify-blob, another repository: %s", strings.TrimSpace(o))
	}

	policy := signing.Policy{
		CertificateIdentity: s.Identity(), CertificateOIDCIssuer: s.IssuerURL, TrustedRoot: s.TrustedRoot,
		SourceRepository: "gantry-ci/gantry", SourceRefRegexp: `^refs/tags/v[0-9]`,
	}
	rep, err := signing.VerifyFiles(t.Context(), []string{f}, policy)
	if err != nil || !strings.Contains(rep.Checks[0].Reason, "signed by "+s.Identity()) {
		t.Fatalf("VerifyFiles: %v %+v", err, rep)
	}
	if !strings.Contains(rep.Policy, "source repository https://github.com/gantry-ci/gantry") {
		t.Errorf("policy %q does not name the source repository", rep.Policy)
	}
	wrong := policy
	wrong.SourceRepository = "https://github.com/acme/gantry"
	if _, err := signing.VerifyFiles(t.Context(), []string{f}, wrong); err == nil || !strings.Contains(err.Error(), "issued to a run of https://github.com/gantry-ci/gantry, but verify-source-repository requires https://github.com/acme/gantry") {
		t.Errorf("verify with another source repository: %v", err)
	}

	// The log and timestamp are required by the trusted root: tamper and
	// the signature no longer verifies.
	writeFile(t, f, "tampered\n")
	if _, err := signing.VerifyFiles(t.Context(), []string{f}, policy); err == nil || !strings.Contains(err.Error(), "the file is not what was signed") {
		t.Errorf("verify a tampered file: %v", err)
	}
	if o, err := cosign.run(t, nil, args("gantry-ci/gantry")...); err == nil {
		t.Errorf("cosign verify-blob accepted a tampered file:\n%s", o)
	}
}

// TestFilesInputErrors: files that cannot be signed are named before
// anything is signed, and no bundle is written.
func TestFilesInputErrors(t *testing.T) {
	dir := releaseFiles(t)
	key, _ := gantryKeyPair(t, t.TempDir(), "release", "pw")
	for _, tc := range []struct {
		name  string
		files []string
		edit  func(*signing.Inputs)
		want  []string
	}{
		{"image and files", []string{"dist/checksums.txt"}, func(in *signing.Inputs) {
			in.Image = "ghcr.io/acme/app@sha256:0433f73a751060932c9303b1873e2d703619744b7c4bb8104a4116aa5d671924"
		},
			[]string{`inputs "image" and "files" exclude each other`}},
		{"missing file and empty pattern", []string{"dist/checksums.txt", "dist/SHA256SUMS", "dist/*.zip"}, nil,
			[]string{`input "files": dist/SHA256SUMS does not exist (relative to ` + dir + `)`, `input "files": dist/*.zip matches no file`}},
		{"directory", []string{"dist"}, nil, []string{`input "files": dist is a directory: name its files, or a pattern such as dist/*`}},
		{"bad pattern", []string{"dist/[.txt"}, nil, []string{`input "files": "dist/[.txt" is not a valid pattern`}},
		{"attestations", []string{"dist/checksums.txt"}, func(in *signing.Inputs) { in.Attestations = []string{"provenance"} },
			[]string{`input "attestations" applies to images`}},
		{"require", []string{"dist/checksums.txt"}, func(in *signing.Inputs) { in.Verify, in.Require = true, []string{"sbom"} },
			[]string{`input "require" applies to images`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := signing.Inputs{Files: tc.files, Key: key, KeyPassword: "pw", Keyless: "auto", TlogUpload: "auto", Dir: dir, Timeout: time.Minute}
			if tc.edit != nil {
				tc.edit(&in)
			}
			_, err := signing.Run(t.Context(), in)
			for _, w := range tc.want {
				if err == nil || !strings.Contains(err.Error(), w) {
					t.Errorf("Run() = %v, want %q", err, w)
				}
			}
			if got := bundlesIn(t, dir); len(got) != 0 {
				t.Errorf("bundles written: %v", got)
			}
		})
	}
}
