package sbom_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/gantry-ci/gantry/internal/sbom"
	"github.com/gantry-ci/gantry/internal/testproc"
)

// TestSyftCLIAgrees catalogs each platform of the test image with the syft
// CLI (bin/syft from `make tools`), by the platform's manifest digest
// straight from the registry, and checks that gantry-sbom found the same
// name@version set in both of its formats.
func TestSyftCLIAgrees(t *testing.T) {
	t.Parallel()
	syft := testproc.Tool(t, "syft")
	ti := pushTestImage(t)
	out, err := sbom.Run(t.Context(), sbom.Inputs{
		Image: ti.index, Formats: []string{"spdx-json", "cyclonedx-json"}, OutputDir: t.TempDir(),
	})
	if err != nil {
		t.Fatal(err)
	}
	for platform, manifest := range ti.platforms {
		cli := syftCLIPackages(t, syft, ti.repo+"@"+manifest)
		if len(cli) < 10 {
			t.Fatalf("%s: the syft CLI found only %v", platform, cli)
		}
		files := out.Files[platform]
		for _, got := range []map[string]bool{readSPDX(t, files[0]).packageSet(), readCycloneDX(t, files[1]).packageSet()} {
			for p := range cli {
				if !got[p] {
					t.Errorf("%s: the syft CLI found %s, gantry-sbom did not", platform, p)
				}
			}
			for p := range got {
				if !cli[p] {
					t.Errorf("%s: gantry-sbom found %s, the syft CLI did not", platform, p)
				}
			}
		}
		if out.Packages[platform] != len(cli) {
			t.Errorf("%s: packages output %d, the syft CLI found %d", platform, out.Packages[platform], len(cli))
		}
	}
}

// TestSyftCLIAgreesOnPaths catalogs a Go binary's directory and the
// binary itself with the syft CLI (syft scan dir:… and file:…, SPDX JSON)
// and checks that the paths input found the same name@version set in both
// of its formats.
func TestSyftCLIAgreesOnPaths(t *testing.T) {
	t.Parallel()
	syft := testproc.Tool(t, "syft")
	bin := notify(t)
	out, err := sbom.Run(t.Context(), sbom.Inputs{
		Paths: []string{"notify-dir=" + filepath.Dir(bin), bin}, Formats: []string{"spdx-json", "cyclonedx-json"}, OutputDir: t.TempDir(),
	})
	if err != nil {
		t.Fatal(err)
	}
	for name, src := range map[string]string{"notify-dir": "dir:" + filepath.Dir(bin), "gantry-notify": "file:" + bin} {
		cli := syftCLISPDXPackages(t, syft, src)
		if len(cli) < 3 {
			t.Fatalf("%s: the syft CLI found only %v", src, cli)
		}
		files := out.Files[name]
		for _, got := range []map[string]bool{readSPDX(t, files[0]).packageSet(), readCycloneDX(t, files[1]).packageSet()} {
			for p := range cli {
				if !got[p] {
					t.Errorf("%s: the syft CLI found %s, gantry-sbom did not", src, p)
				}
			}
			for p := range got {
				if !cli[p] {
					t.Errorf("%s: gantry-sbom found %s, the syft CLI did not", src, p)
				}
			}
		}
		if out.Packages[name] != len(cli) {
			t.Errorf("%s: packages output %d, the syft CLI found %d", src, out.Packages[name], len(cli))
		}
	}
}

// syftCLISPDXPackages runs `syft scan <src> -o spdx-json` and returns the
// name@version set of the document's packages.
func syftCLISPDXPackages(t *testing.T, syft, src string) map[string]bool {
	t.Helper()
	dir := t.TempDir()
	out := filepath.Join(dir, "syft.spdx.json")
	cmd := exec.CommandContext(t.Context(), syft, "scan", src, "-q", "-o", "spdx-json="+out)
	cmd.Env = append(os.Environ(), syftEnv(dir)...)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("syft scan %s: %v\n%s", src, err, b)
	}
	return readSPDX(t, out).packageSet()
}

// syftCLIPackages runs `syft registry:<ref> -o syft-json` and returns the
// name@version set it found.
func syftCLIPackages(t *testing.T, syft, ref string) map[string]bool {
	t.Helper()
	dir := t.TempDir()
	cmd := exec.CommandContext(t.Context(), syft, "registry:"+ref, "-q", "-o", "syft-json="+filepath.Join(dir, "syft.json"))
	cmd.Env = append(os.Environ(), syftEnv(dir)...)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("syft %s: %v\n%s", ref, err, b)
	}
	var doc struct {
		Artifacts []struct {
			Name    string `json:"name"`
			Version string `json:"version"`
		} `json:"artifacts"`
	}
	b, err := os.ReadFile(filepath.Join(dir, "syft.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatalf("syft-json output: %v", err)
	}
	set := map[string]bool{}
	for _, a := range doc.Artifacts {
		set[a.Name+"@"+a.Version] = true
	}
	return set
}

// syftEnv keeps the syft CLI offline and out of the user's config and
// cache: no update check, a private home.
func syftEnv(home string) []string {
	return []string{
		"SYFT_CHECK_FOR_APP_UPDATE=false",
		"HOME=" + home,
		"XDG_CONFIG_HOME=" + filepath.Join(home, ".config"),
		"XDG_CACHE_HOME=" + filepath.Join(home, ".cache"),
	}
}
