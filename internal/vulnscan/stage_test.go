package vulnscan_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/gantry-ci/gantry/internal/ocitest"
	"github.com/gantry-ci/gantry/internal/vulnscan"
	"github.com/gantry-ci/gantry/internal/vulnscan/scantest"
)

func TestValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		edit func(*vulnscan.Inputs)
		want string
	}{
		{"nothing to scan", func(in *vulnscan.Inputs) { in.Path = "" }, `inputs "image" and "path" are both empty`},
		{"unknown scanner", func(in *vulnscan.Inputs) { in.Scanners = []string{"vuln", "sbom"} }, `input "scanners": "sbom" is not a scanner`},
		{"unknown severity", func(in *vulnscan.Inputs) { in.Severity = []string{"SEVERE"} }, `input "severity": "SEVERE" is not a severity`},
		{"no cache dir", func(in *vulnscan.Inputs) { in.CacheDir = "" }, `input "cache-dir" is empty`},
		{"no mirrors", func(in *vulnscan.Inputs) { in.Offline = false; in.DBRepositories = nil }, `input "db-repositories" is empty`},
		{"half credentials", func(in *vulnscan.Inputs) { in.RegistryUsername = "bot" }, `"registry-username" and "registry-password" go together`},
		{"bad platform", func(in *vulnscan.Inputs) { in.Image = "r/a@sha256:0"; in.Platforms = []string{"arm64"} }, `input "platforms": "arm64" is not os/arch`},
		{"platforms without image", func(in *vulnscan.Inputs) { in.Platforms = []string{"linux/arm64"} }, `"platforms" is set but "image" is empty`},
		{"no sarif file", func(in *vulnscan.Inputs) { in.SARIFFile = "" }, `input "sarif-file" is empty`},
		{"history without path", func(in *vulnscan.Inputs) {
			in.Path = ""
			in.Image = "r/a@sha256:0"
			in.Scanners = []string{"vuln", "history"}
		}, `input "scanners": history scans the Git history of path, which is empty`},
		{"since without history", func(in *vulnscan.Inputs) { in.HistorySince = "HEAD~3" }, `input "history-since" is set but "scanners" does not list history`},
		{"image with history only", func(in *vulnscan.Inputs) { in.Image = "r/a@sha256:0"; in.Scanners = []string{"history"} }, `input "image" is set but "scanners" lists only history`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			in := baseInputs(t, t.TempDir())
			in.Path = "."
			tt.edit(&in)
			err := in.Validate()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Validate() = %v, want %q", err, tt.want)
			}
		})
	}
	in := baseInputs(t, t.TempDir())
	in.Path = "."
	in.Scanners = []string{" Vuln", "secret"}
	in.Severity = []string{"critical"}
	if err := in.Validate(); err != nil || in.Scanners[0] != "vuln" || in.Severity[0] != "CRITICAL" {
		t.Errorf("Validate() = %v, scanners %v severity %v: want normalized", err, in.Scanners, in.Severity)
	}
}

func TestIgnoreFileErrors(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, yaml, want string }{
		{"no id", "ignore:\n  - reason: x\n", "set id (a CVE/GHSA ID or license), rule (a check or secret rule ID) or fingerprint"},
		{"both", "ignore:\n  - {id: A, rule: B, reason: x}\n", "set one of id, rule and fingerprint"},
		{"id and fingerprint", "ignore:\n  - {id: A, fingerprint: 'a:b:c:1', reason: x}\n", "set one of id, rule and fingerprint"},
		{"bad fingerprint", "ignore:\n  - {fingerprint: 'config/old.env', reason: x}\n", `"config/old.env" is not a fingerprint: write commit:file:rule:line`},
		{"fingerprint no line", "ignore:\n  - {fingerprint: 'abc:f.env:aws-access-token:x', reason: x}\n", "it must end with :line"},
		{"fingerprint with paths", "ignore:\n  - {fingerprint: 'f.env:aws-access-token:3', paths: [x], reason: x}\n", "paths do not go with fingerprint"},
		{"no reason", "ignore:\n  - id: CVE-1\n", "reason is required"},
		{"bad date", "ignore:\n  - {id: CVE-1, reason: x, expires: 31/12/2026}\n", `expires "31/12/2026" is not a date: write YYYY-MM-DD`},
		{"unknown field", "ignore:\n  - {id: CVE-1, reason: x, until: 2026-01-01}\n", `unknown field "until"`},
		{"bad glob", "ignore:\n  - {id: CVE-1, reason: x, paths: ['[']}\n", "is not a valid glob"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := filepath.Join(t.TempDir(), "ignore.yaml")
			os.WriteFile(f, []byte(tt.yaml), 0o644)
			_, err := vulnscan.LoadIgnoreFile(f)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), `input "ignore-file"`) {
				t.Errorf("LoadIgnoreFile = %v, want %q naming the input", err, tt.want)
			}
		})
	}
	if _, err := vulnscan.LoadIgnoreFile(filepath.Join(t.TempDir(), "missing.yaml")); err == nil || !strings.Contains(err.Error(), `input "ignore-file"`) {
		t.Errorf("missing ignore file: %v", err)
	}
}

func TestTrivyIgnore(t *testing.T) {
	t.Parallel()
	f := filepath.Join(t.TempDir(), ".trivyignore")
	os.WriteFile(f, []byte("# comment\nCVE-2021-23337\n\nCVE-2024-5535 exp:2026-11-20 # until the rebuild\n"), 0o644)
	got, err := vulnscan.LoadTrivyIgnore(f)
	if err != nil || len(got) != 2 {
		t.Fatalf("LoadTrivyIgnore = %+v, %v", got, err)
	}
	if got[1].ID != "CVE-2024-5535" || got[1].Expires != "2026-11-20" || got[1].Line != 4 {
		t.Errorf("entry = %+v", got[1])
	}
	// The expiry day itself still ignores; the next day does not.
	if got[1].Expired(time.Date(2026, 11, 20, 23, 59, 0, 0, time.UTC)) || !got[1].Expired(time.Date(2026, 11, 21, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("expiry is not end of day 2026-11-20")
	}
	if none, err := vulnscan.LoadTrivyIgnore(filepath.Join(t.TempDir(), "absent")); err != nil || none != nil {
		t.Errorf("absent .trivyignore: %v %v", none, err)
	}
}

// TestPlatforms scans only the platforms asked for, and names the ones the
// index has when a platform is missing (real registry, fake scanner).
func TestPlatforms(t *testing.T) {
	reg := startRegistry(t)
	ref := pushFixtureImage(t, reg)
	run := func(platforms ...string) (*vulnscan.FakeScanner, error) {
		in := baseInputs(t, fixtureCache(t))
		in.Image, in.Platforms, in.Scanners = ref, platforms, []string{"secret"}
		fake := &vulnscan.FakeScanner{}
		in.NewScanner = func(vulnscan.ScannerConfig) (vulnscan.Scanner, error) { return fake, nil }
		_, err := vulnscan.Run(t.Context(), in)
		return fake, err
	}
	fake, err := run()
	if err != nil || len(fake.Scanned) != 2 || fake.Scanned[0].Platform != "linux/amd64" || fake.Scanned[1].Platform != "linux/arm64" {
		t.Fatalf("all platforms: %v, scanned %+v", err, fake.Scanned)
	}
	for _, s := range fake.Scanned {
		if !strings.Contains(s.Ref, "@sha256:") || !strings.Contains(s.Index, "@sha256:") || s.Ref == s.Index {
			t.Errorf("target %+v: want the platform manifest by digest and its index by digest", s)
		}
	}
	fake, err = run("linux/arm64")
	if err != nil || len(fake.Scanned) != 1 || fake.Scanned[0].Platform != "linux/arm64" {
		t.Fatalf("linux/arm64 only: %v, scanned %+v", err, fake.Scanned)
	}
	_, err = run("linux/s390x")
	if err == nil || !strings.Contains(err.Error(), `input "platforms"`) || !strings.Contains(err.Error(), "linux/amd64, linux/arm64") {
		t.Errorf("missing platform error = %v", err)
	}
}

// TestImageErrors names the input and the fix for references that do not
// resolve.
func TestImageErrors(t *testing.T) {
	reg := startRegistry(t)
	for _, tt := range []struct{ image, want string }{
		{reg.Host + "/acme/missing:1.0", `input "image": ` + reg.Host + "/acme/missing:1.0 is a tag and resolving it failed"},
		{"not a ref!", `input "image": "not a ref!" is not an image reference`},
	} {
		in := baseInputs(t, t.TempDir())
		in.Image = tt.image
		in.NewScanner = func(vulnscan.ScannerConfig) (vulnscan.Scanner, error) { return &vulnscan.FakeScanner{}, nil }
		if _, err := vulnscan.Run(t.Context(), in); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("image %q: %v, want %q", tt.image, err, tt.want)
		}
	}
}

// TestImageWithCredentials reads an image from a registry that requires
// basic auth, with the registry-username/-password inputs.
func TestImageWithCredentials(t *testing.T) {
	reg, err := ocitest.StartRegistry(ocitest.BasicAuth("ci-bot", "s3cret"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Close() })
	idx, err := scantest.Index(filepath.Join(root(t), scantest.ImageDir), []string{"linux/amd64"})
	if err != nil {
		t.Fatal(err)
	}
	ref, _ := name.ParseReference(reg.Host + "/private/app:1")
	if err := remote.WriteIndex(ref, idx, remote.WithAuth(&authn.Basic{Username: "ci-bot", Password: "s3cret"})); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		user, pass string
		ok         bool
	}{{"ci-bot", "s3cret", true}, {"", "", false}} {
		in := baseInputs(t, t.TempDir())
		in.Image, in.Scanners = ref.String(), []string{"secret"}
		in.RegistryUsername, in.RegistryPassword = tt.user, tt.pass
		in.Keychain = authn.NewMultiKeychain() // no Docker config
		in.Backoff = remote.Backoff{Duration: time.Millisecond, Steps: 1}
		fake := &vulnscan.FakeScanner{}
		in.NewScanner = func(vulnscan.ScannerConfig) (vulnscan.Scanner, error) { return fake, nil }
		_, err := vulnscan.Run(t.Context(), in)
		if tt.ok && (err != nil || len(fake.Scanned) != 1) {
			t.Errorf("with credentials: %v, scanned %d", err, len(fake.Scanned))
		}
		if !tt.ok && (err == nil || !strings.Contains(err.Error(), `input "image"`)) {
			t.Errorf("without credentials: %v, want an error naming the image input", err)
		}
	}
}
