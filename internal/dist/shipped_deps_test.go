package dist_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gantry-ci/gantry/internal/dist"
	"github.com/gantry-ci/gantry/internal/testproc"
)

const module = "github.com/gantry-ci/gantry"

// testOnly reports whether a package is test code that no shipped binary
// may link: our test servers and helpers (every internal/... package whose
// last path element ends in "test": ocitest, scantest, notifytest,
// ghreleasetest, k8stest, promtest, sigstoretest, traffictest,
// buildkittest, workflowtest, actiontest, disttest …), internal/testproc
// and internal/golden (test-binary helpers), and slack-go's slacktest
// server.
func testOnly(pkg string) bool {
	if pkg == "github.com/slack-go/slack/slacktest" {
		return true
	}
	rest, ok := strings.CutPrefix(pkg, module+"/internal/")
	if !ok {
		return false
	}
	return strings.HasSuffix(path.Base(rest), "test") || rest == "testproc" || rest == "golden"
}

type listedPackage struct {
	ImportPath string
	Name       string
	Imports    []string
	Deps       []string
}

// goList runs `go list args...` at the repository root for one release
// platform, with the environment scripts/dist.sh builds the release with,
// and decodes its JSON stream.
func goList(t *testing.T, goBin, root, platform string, args ...string) []listedPackage {
	t.Helper()
	goos, goarch, _ := strings.Cut(platform, "/")
	cmd := exec.CommandContext(t.Context(), goBin, append([]string{"list"}, args...)...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "GOOS="+goos, "GOARCH="+goarch, "GOEXPERIMENT=jsonv2", "CGO_ENABLED=0")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list %s (%s): %v\n%s", strings.Join(args, " "), platform, err, stderr.String())
	}
	var pkgs []listedPackage
	for dec := json.NewDecoder(bytes.NewReader(out)); ; {
		var p listedPackage
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("go list %s (%s): decoding its output: %v", strings.Join(args, " "), platform, err)
		}
		pkgs = append(pkgs, p)
	}
	return pkgs
}

// importChains are shortest import paths from the command to each of the
// targets, for the failure message.
func importChains(t *testing.T, goBin, root, platform, command string, targets []string) []string {
	graph := map[string][]string{}
	for _, p := range goList(t, goBin, root, platform, "-deps", "-json=ImportPath,Imports", command) {
		graph[p.ImportPath] = p.Imports
	}
	from := map[string]string{command: ""}
	for queue := []string{command}; len(queue) > 0; queue = queue[1:] {
		for _, next := range graph[queue[0]] {
			if _, seen := from[next]; !seen {
				from[next] = queue[0]
				queue = append(queue, next)
			}
		}
	}
	var chains []string
	for _, target := range targets {
		if _, ok := from[target]; !ok {
			chains = append(chains, target+" (no import path found)")
			continue
		}
		chain := []string{target}
		for p := from[target]; p != ""; p = from[p] {
			chain = append(chain, p)
		}
		slices.Reverse(chain)
		chains = append(chains, strings.Join(chain, " → "))
	}
	return chains
}

// TestShippedBinariesLinkNoTestCode: what a release ships links no test
// server or test helper. The shipped binaries are every command directly
// under cmd/ (cmd/gantry and cmd/<stage>, what scripts/dist.sh builds), for
// every release platform. internal/cmd/gantry-demo is left out on purpose:
// it is a developer's demo that ships in no release, and it links test
// servers by design (the embedded registry, the Slack and GitHub stand-ins).
func TestShippedBinariesLinkNoTestCode(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to list what the shipped binaries link: %v", err)
	}
	root, err := testproc.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(filepath.Join(root, "cmd"))
	if err != nil {
		t.Fatal(err)
	}
	var commands []string
	for _, e := range entries {
		if e.IsDir() {
			commands = append(commands, module+"/cmd/"+e.Name())
		}
	}
	if len(commands) < 2 {
		t.Fatalf("found %d commands under cmd/ (%v), want cmd/gantry and the stages", len(commands), commands)
	}
	for _, platform := range dist.Platforms {
		t.Run(strings.ReplaceAll(platform, "/", "_"), func(t *testing.T) {
			t.Parallel()
			pkgs := goList(t, goBin, root, platform, "-json=ImportPath,Name,Deps", "./cmd/...")
			listed := 0
			for _, p := range pkgs {
				if !slices.Contains(commands, p.ImportPath) {
					continue
				}
				listed++
				if p.Name != "main" {
					t.Errorf("%s is package %s, not a command", p.ImportPath, p.Name)
				}
				var linked []string
				for _, dep := range p.Deps {
					if testOnly(dep) {
						linked = append(linked, dep)
					}
				}
				if len(linked) == 0 {
					continue
				}
				for i, chain := range importChains(t, goBin, root, platform, p.ImportPath, linked) {
					t.Errorf("%s links the test package %s on %s: %s", strings.TrimPrefix(p.ImportPath, module+"/"), linked[i], platform, chain)
				}
			}
			if listed != len(commands) {
				t.Errorf("go list ./cmd/... listed %d of the %d commands %v", listed, len(commands), commands)
			}
		})
	}
}

// The predicate itself, on the packages named above and on product
// packages that must not match.
func TestTestOnly(t *testing.T) {
	for pkg, want := range map[string]bool{
		module + "/internal/ocitest":                           true,
		module + "/internal/vulnscan/scantest":                 true,
		module + "/internal/slacknotify/notifytest":            true,
		module + "/internal/ghrelease/ghreleasetest":           true,
		module + "/internal/ghaction/actiontest":               true,
		module + "/internal/testproc":                          true,
		module + "/internal/golden":                            true,
		"github.com/slack-go/slack/slacktest":                  true,
		module + "/internal/ghaction":                          false,
		module + "/internal/slacknotify":                       false,
		module + "/cmd/gantry":                                 false,
		"github.com/slack-go/slack":                            false,
		"k8s.io/client-go/testing":                             false,
		"github.com/sigstore/cosign/v3/pkg/cosign/attestation": false,
	} {
		if got := testOnly(pkg); got != want {
			t.Errorf("testOnly(%s) = %v, want %v", pkg, got, want)
		}
	}
}
