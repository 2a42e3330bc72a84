package workflowtest_test

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"debug/elf"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/gantry-ci/gantry/internal/buildkittest"
	"github.com/gantry-ci/gantry/internal/k8stest"
	"github.com/gantry-ci/gantry/internal/ocitest"
	"github.com/gantry-ci/gantry/internal/registry"
	"github.com/gantry-ci/gantry/internal/release"
	"github.com/gantry-ci/gantry/internal/signing"
	"github.com/gantry-ci/gantry/internal/slacknotify/notifytest"
	"github.com/gantry-ci/gantry/internal/vulnscan"
	"github.com/gantry-ci/gantry/internal/vulnscan/scantest"
	"github.com/gantry-ci/gantry/internal/workflowtest"
)

// renderCaller fills the __NAME__ placeholders of a caller workflow in
// testdata/workflows (a caller cannot pass env values into a reusable
// workflow's with: or secrets:) and returns the path of the rendered copy.
func renderCaller(t *testing.T, repo, file string, values map[string]string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repo, "testdata", "workflows", file))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	for k, v := range values {
		s = strings.ReplaceAll(s, "__"+k+"__", v)
	}
	for _, l := range strings.Split(s, "\n") {
		if placeholderRE.MatchString(l) && !strings.HasPrefix(strings.TrimSpace(l), "#") {
			t.Fatalf("placeholder left in %s: %s", file, l)
		}
	}
	out := filepath.Join(t.TempDir(), file)
	if err := os.WriteFile(out, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	return out
}

var placeholderRE = regexp.MustCompile(`__[A-Z][A-Z_]*__`)

var remoteUsesRE = regexp.MustCompile(`(?m)^\s*(?:-\s*)?uses:\s*([\w.-]+/[\w.-]+)((?:/[\w.-]+)*)@([0-9a-f]{40})`)

// runReusable runs a rendered caller with act like workflowtest.Act.Run,
// plus a stand-in for every remote action the reusable workflows pin. act
// resolves every remote action of a job before it evaluates any step's if:,
// even those skipped under act, and it cannot fetch offline; each stand-in
// fails loudly if a step the workflow skips under act ever runs it.
func runReusable(ctx context.Context, t *testing.T, a workflowtest.Act, workflow string, env map[string]string) (string, error) {
	t.Helper()
	stubs := t.TempDir()
	repos := map[string]string{}
	files, _ := filepath.Glob(filepath.Join(a.Repo, ".github", "workflows", "*.yml"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range remoteUsesRE.FindAllStringSubmatch(string(b), -1) {
			repo, sub, sha := m[1], strings.TrimPrefix(m[2], "/"), m[3]
			key := repo + "@" + sha
			if key == "actions/setup-go@"+workflowtest.SetupGoSHA {
				continue
			}
			dir := filepath.Join(stubs, strings.ReplaceAll(repo, "/", "+")+"@"+sha)
			stub := fmt.Sprintf("name: %s stub\ndescription: offline stand-in (tests only)\nruns:\n  using: composite\n  steps:\n    - shell: bash\n      run: |\n        echo \"::error::the %s%s stub ran: a step that must be skipped under act was not\"\n        exit 1\n", repo, repo, m[2])
			if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, sub, "action.yml"), []byte(stub), 0o644); err != nil {
				t.Fatal(err)
			}
			repos[key] = dir
		}
	}
	return a.RunWith(ctx, "push", workflow, env, repos)
}

func readOutputs(t *testing.T, path, log string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("the caller did not hand over the outputs: %v\n%s", err, log)
	}
	out := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		k, v, _ := strings.Cut(l, "=")
		out[k] = strings.TrimSpace(v)
	}
	return out
}

// shipFixture is what a build-and-push.yml run needs around act: the
// fixture vulnerability DB in a cache directory (offline scans) and a
// cosign key pair with the password.
func shipFixture(t *testing.T, password string) (act workflowtest.Act, cache, keyPath, pubPath string) {
	t.Helper()
	act = workflowtest.New(t)
	cache = t.TempDir()
	if err := scantest.Build(cache, filepath.Join(act.Repo, scantest.FixturesPath), time.Now().Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	keys := t.TempDir()
	priv, pub, err := signing.GenerateKeyPair([]byte(password))
	if err != nil {
		t.Fatal(err)
	}
	keyPath, pubPath = filepath.Join(keys, "cosign.key"), filepath.Join(keys, "cosign.pub")
	write(t, keyPath, string(priv), 0o600)
	write(t, pubPath, string(pub), 0o644)
	return act, cache, keyPath, pubPath
}

// TestReusableBuildAndPush runs .github/workflows/build-and-push.yml through
// the caller testdata/workflows/reusable-build-and-push.yml with act, against
// a local registry, the fixture vulnerability DB (offline) and a cosign key:
//
//   - pass: a clean base; the workflow outputs the digest and image, and the
//     registry holds a key signature plus SBOM, provenance and scan
//     attestations on the digest (verified with the public key).
//   - gate: a base with the vulnerable Alpine packages of testdata/scan/image;
//     the scan gate fails the build job, the sign job never runs and the
//     digest carries no signature.
func TestReusableBuildAndPush(t *testing.T) {
	t.Parallel()
	const password = "act-reusable-key-password-31337"
	act, cache, keyPath, pubPath := shipFixture(t, password)

	// A Slack workspace per run (the subtests run one after the other).
	var slack *notifytest.Workspace
	run := func(t *testing.T, vulnerable bool) (map[string]string, string, string, string) {
		slack = notifytest.Start()
		t.Cleanup(slack.Close)
		idx, err := ocitest.Base([]string{"linux/amd64", "linux/arm64"}, ocitest.BaseOptions{})
		if vulnerable {
			idx, err = scantest.Index(filepath.Join(act.Repo, scantest.ImageDir), []string{"linux/amd64", "linux/arm64"})
		}
		if err != nil {
			t.Fatal(err)
		}
		reg, baseRef := registryWith(t, "library/base:1", idx)
		result, handoff := t.TempDir(), t.TempDir()
		wf := renderCaller(t, act.Repo, "reusable-build-and-push.yml", map[string]string{
			"SLACK_API":    slack.APIURL(),
			"SLACK_TOKEN":  notifytest.Token,
			"REGISTRY":     reg.Host,
			"BASE":         baseRef.String(),
			"CACHE":        cache,
			"KEY":          keyPath,
			"KEY_PASSWORD": password,
			"RESULT":       result,
		})
		start := time.Now()
		log, err := runReusable(t.Context(), t, act, wf, map[string]string{
			"GANTRY_ACT_HANDOFF": handoff,
			"SOURCE_DATE_EPOCH":  "1795179791",
		})
		t.Logf("act ran the workflow in %v (err %v)", time.Since(start).Round(time.Second), err)
		if err != nil && !vulnerable {
			t.Fatalf("%v\n%s", err, log)
		}
		if err == nil && vulnerable {
			t.Errorf("the workflow succeeded although the scan gate must fail\n%s", log)
		}
		out := map[string]string{}
		if !vulnerable {
			out = readOutputs(t, filepath.Join(result, "outputs"), log)
		}
		for _, line := range strings.Split(log, "\n") {
			if (strings.Contains(line, password) || strings.Contains(line, notifytest.Token)) && !strings.Contains(line, "add-mask") {
				t.Errorf("a secret appears in the workflow log: %s", line)
			}
		}
		return out, reg.Host, log, handoff
	}

	verify := func(image string) (signing.Report, error) {
		return signing.Verify(t.Context(), image, signing.Policy{
			Key:       pubPath,
			Require:   []string{"sbom", "provenance", "scan"},
			Recursive: true,
			Conn:      registry.Conn{},
			Getenv:    os.Getenv,
		})
	}

	t.Run("pass", func(t *testing.T) {
		out, host, log, handoff := run(t, false)
		digest, image := out["digest"], out["image"]
		if !strings.HasPrefix(digest, "sha256:") || image != host+"/acme/prompt-builder@"+digest {
			t.Fatalf("outputs digest=%q image=%q, want %s/acme/prompt-builder@sha256:… (all: %v)\n%s", digest, image, host, out, log)
		}
		if out["scan-verdict"] != "pass" || out["result"] != "success" {
			t.Errorf("scan-verdict=%q result=%q, want pass and success", out["scan-verdict"], out["result"])
		}
		if !strings.Contains(out["tags"], ":act") {
			t.Errorf("tags output %q lacks the act tag", out["tags"])
		}
		if !strings.Contains(out["signed"], digest) {
			t.Errorf("signed output %q does not name the digest %s", out["signed"], digest)
		}
		// Slack: one message for the run, posted by the build job and updated
		// in place by the build result and the sign job.
		if msgs := slack.Messages(); len(msgs) != 1 {
			t.Errorf("%d Slack messages, want 1", len(msgs))
		} else {
			preview := notifytest.Preview(msgs[0])
			for _, want := range []string{"*build*", "*sign*", digest} {
				if !strings.Contains(preview, want) {
					t.Errorf("the Slack message lacks %q:\n%s", want, preview)
				}
			}
		}
		// The sign job adds its section to the release record the build job
		// started (handed between the jobs as an artifact; a directory under act).
		var rec release.Record
		if b, err := os.ReadFile(filepath.Join(handoff, "gantry-release", "gantry-release.json")); err != nil || json.Unmarshal(b, &rec) != nil {
			t.Errorf("release record from the sign job: %v", err)
		} else {
			if rec.Digest != digest {
				t.Errorf("release record digest %s, want %s", rec.Digest, digest)
			}
			for _, st := range []string{"sbom", "scan", "sign"} {
				if _, ok := rec.Stages[st]; !ok {
					t.Errorf("release record lacks the %s stage (has %v)", st, keysOf(rec.Stages))
				}
			}
		}
		d, _ := name.NewDigest(image)
		// The build step compiled the sample app per platform; each platform
		// carries the server for its own architecture.
		idx, err := remote.Index(d)
		if err != nil {
			t.Fatal(err)
		}
		for arch, machine := range map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64} {
			img, err := idx.Image(platformDigest(t, idx, arch))
			if err != nil {
				t.Fatal(err)
			}
			if m, err := elfMachine(img, "app/server"); err != nil || m != machine {
				t.Errorf("linux/%s: /app/server is %v (%v), want an ELF for %v built by build-command", arch, m, err, machine)
			}
		}
		refs, err := remote.Referrers(d)
		if err != nil {
			t.Fatal(err)
		}
		if m, _ := refs.IndexManifest(); m == nil || len(m.Manifests) == 0 {
			t.Errorf("no referrers on %s: the signature and attestations did not land", image)
		}
		rep, err := verify(image)
		if err != nil {
			t.Errorf("verify %s with the public key: %v", image, err)
		}
		kinds := map[string]int{}
		for _, c := range rep.Checks {
			if c.Passed {
				kinds[c.What]++
			}
		}
		// The index and both platforms are signed; SBOMs sit on each platform,
		// the scan result on the index.
		if kinds["signature"] != 3 || kinds["sbom"] < 2 || kinds["provenance"] < 1 || kinds["scan"] < 1 {
			t.Errorf("verified checks %v, want 3 signatures, sbom on both platforms, provenance and scan", kinds)
		}
	})

	t.Run("gate", func(t *testing.T) {
		// act stops the run when the called workflow fails, so the caller's
		// report job does not run: the build job's files (handed over as
		// under act) tell the digest and the verdict.
		_, host, log, handoff := run(t, true)
		var rec release.Record
		b, err := os.ReadFile(filepath.Join(handoff, "gantry-build", "gantry-release.json"))
		if err != nil || json.Unmarshal(b, &rec) != nil || !strings.HasPrefix(rec.Digest, "sha256:") {
			t.Fatalf("the build job's release record (%v): %s\n%s", err, b, log)
		}
		var rep vulnscan.Report
		b, err = os.ReadFile(filepath.Join(handoff, "gantry-build", "gantry-scan.json"))
		if err != nil || json.Unmarshal(b, &rep) != nil {
			t.Fatalf("the build job's scan report (%v): %s", err, b)
		}
		if rep.Gate.Verdict != "fail" || rep.Counts.Critical == 0 {
			t.Errorf("scan verdict %q with %d critical, want fail on the fixture's critical finding", rep.Gate.Verdict, rep.Counts.Critical)
		}
		if _, err := os.Stat(filepath.Join(handoff, "gantry-release")); err == nil {
			t.Errorf("the sign job ran although the gate failed")
		}
		image := host + "/acme/prompt-builder@" + rec.Digest
		d, _ := name.NewDigest(image)
		if refs, err := remote.Referrers(d); err == nil {
			if m, _ := refs.IndexManifest(); m != nil && len(m.Manifests) > 0 {
				t.Errorf("%s has %d referrers although it failed the gate", image, len(m.Manifests))
			}
		}
		if _, err := verify(image); err == nil {
			t.Errorf("%s verifies although it failed the gate", image)
		}
		if strings.Contains(log, "Main Sign and attest") {
			t.Errorf("the sign step ran although the gate failed")
		}
	})
}

func keysOf(m map[string]json.RawMessage) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// TestReusableDeployStaging runs .github/workflows/deploy.yml through the
// caller testdata/workflows/reusable-deploy.yml with act against a real
// control plane: environment staging resolves to a rolling update, the
// kubeconfig arrives as a secret, and the Deployment ends up running the
// image by digest.
func TestReusableDeployStaging(t *testing.T) {
	t.Parallel()
	act := workflowtest.New(t)
	c := k8stest.Start(t)
	ns := c.Namespace(t)
	dir := t.TempDir()
	manifest := filepath.Join(dir, "api.yaml")
	write(t, manifest, fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata: {name: api, namespace: %s}
spec:
  replicas: 2
  selector: {matchLabels: {app: api}}
  template:
    metadata:
      labels: {app: api}
    spec:
      containers: [{name: api, image: "ghcr.io/acme/api:latest"}]
`, ns), 0o644)
	digest := fmt.Sprintf("sha256:%x", sha256.Sum256([]byte("reusable-deploy")))
	image := "ghcr.io/acme/api@" + digest
	result := t.TempDir()
	wf := renderCaller(t, act.Repo, "reusable-deploy.yml", map[string]string{
		"IMAGE":      image,
		"MANIFESTS":  manifest,
		"KUBECONFIG": c.Kubeconfig,
		"VERIFY_KEY": "",
		"RESULT":     result,
	})
	start := time.Now()
	log, err := runReusable(t.Context(), t, act, wf, nil)
	t.Logf("act ran the workflow in %v", time.Since(start).Round(time.Second))
	if err != nil {
		t.Fatalf("%v\n%s", err, log)
	}
	out := readOutputs(t, filepath.Join(result, "outputs"), log)
	if out["status"] != "success" || out["digest"] != digest {
		t.Errorf("outputs %v, want status success and digest %s\n%s", out, digest, log)
	}
	if !strings.Contains(log, "strategy rolling for staging") {
		t.Errorf("the log does not show the strategy resolved to rolling")
	}
	d, err := c.Clientset().AppsV1().Deployments(ns).Get(t.Context(), "api", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if img := d.Spec.Template.Spec.Containers[0].Image; img != image {
		t.Errorf("the Deployment runs %s, want %s", img, image)
	}

	// Verify before deploy, passed through: an unsigned image is refused and
	// the Deployment keeps running the first one.
	unsigned, pubPath := unsignedImage(t)
	result2 := t.TempDir()
	wf = renderCaller(t, act.Repo, "reusable-deploy.yml", map[string]string{
		"IMAGE":      unsigned,
		"MANIFESTS":  manifest,
		"KUBECONFIG": c.Kubeconfig,
		"VERIFY_KEY": pubPath,
		"RESULT":     result2,
	})
	log, err = runReusable(t.Context(), t, act, wf, nil)
	if err == nil {
		t.Errorf("deploying an unsigned image with verify-key set succeeded\n%s", log)
	} else if !strings.Contains(log, "verify-before-deploy failed") {
		t.Errorf("the deploy failed, but not on verification:\n%s", log)
	}
	d, err = c.Clientset().AppsV1().Deployments(ns).Get(t.Context(), "api", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if img := d.Spec.Template.Spec.Containers[0].Image; img != image {
		t.Errorf("after the refused deploy the Deployment runs %s, want still %s\n%s", img, image, log)
	}
}

// TestReusableSecurityScan runs .github/workflows/security-scan.yml through
// testdata/workflows/reusable-security-scan.yml with act, offline with the
// fixture DB: report-only, the repository scan fails its gate (planted key,
// vulnerable lodash) and the clean image passes; both verdicts come out and
// the job still succeeds.
func TestReusableSecurityScan(t *testing.T) {
	t.Parallel()
	act := workflowtest.New(t)
	cache := t.TempDir()
	if err := scantest.Build(cache, filepath.Join(act.Repo, scantest.FixturesPath), time.Now().Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	reg, err := ocitest.StartRegistry(nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Close() })
	idx, err := ocitest.Base([]string{"linux/amd64", "linux/arm64"}, ocitest.BaseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ref, _ := name.ParseReference(reg.Host + "/acme/app:1")
	if err := remote.WriteIndex(ref, idx); err != nil {
		t.Fatal(err)
	}
	d, _ := idx.Digest()
	result := t.TempDir()
	wf := renderCaller(t, act.Repo, "reusable-security-scan.yml", map[string]string{
		"IMAGE":  reg.Host + "/acme/app@" + d.String(),
		"CACHE":  cache,
		"RESULT": result,
	})
	start := time.Now()
	log, err := runReusable(t.Context(), t, act, wf, nil)
	t.Logf("act ran the workflow in %v", time.Since(start).Round(time.Second))
	if err != nil {
		t.Fatalf("%v\n%s", err, log)
	}
	out := readOutputs(t, filepath.Join(result, "outputs"), log)
	if out["repository-verdict"] != "fail" || out["image-verdict"] != "pass" {
		t.Errorf("verdicts %v, want the repository to fail and the image to pass\n%s", out, log)
	}
	// history: auto on a push without a previous commit scans every commit
	// the checkout's HEAD reaches.
	if m := regexp.MustCompile(`history of \S+: \d+ commit\(s\) in HEAD, gitleaks 8\.30\.1 with built-in rules`).FindString(log); m == "" {
		t.Errorf("the repository job did not scan the Git history\n%s", log)
	} else {
		t.Log(m)
	}
}

func platformDigest(t *testing.T, idx v1.ImageIndex, arch string) v1.Hash {
	t.Helper()
	m, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range m.Manifests {
		if d.Platform != nil && d.Platform.OS == "linux" && d.Platform.Architecture == arch {
			return d.Digest
		}
	}
	t.Fatalf("the index has no linux/%s manifest", arch)
	return v1.Hash{}
}

// elfMachine reads path from an image's flattened filesystem and returns the
// machine its ELF header names.
func elfMachine(img v1.Image, path string) (elf.Machine, error) {
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err != nil {
			return 0, fmt.Errorf("%s not in the image: %w", path, err)
		}
		if strings.TrimPrefix(h.Name, "/") != path {
			continue
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			return 0, err
		}
		f, err := elf.NewFile(bytes.NewReader(b))
		if err != nil {
			return 0, err
		}
		return f.Machine, nil
	}
}

// registryWith starts a registry holding idx as repoTag (e.g.
// library/base:1) and returns it with the reference.
func registryWith(t *testing.T, repoTag string, idx v1.ImageIndex) (*ocitest.Registry, name.Reference) {
	t.Helper()
	reg, err := ocitest.StartRegistry(nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Close() })
	ref, err := name.ParseReference(reg.Host + "/" + repoTag)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(ref, idx); err != nil {
		t.Fatal(err)
	}
	return reg, ref
}

// unsignedImage is an image by digest in a fresh registry that nothing
// signed, and the path of a public key it does not verify with.
func unsignedImage(t *testing.T) (image, pubPath string) {
	t.Helper()
	idx, err := ocitest.Base([]string{"linux/amd64"}, ocitest.BaseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	reg, _ := registryWith(t, "acme/api:unsigned", idx)
	id, _ := idx.Digest()
	_, pub, err := signing.GenerateKeyPair([]byte("unused"))
	if err != nil {
		t.Fatal(err)
	}
	pubPath = filepath.Join(t.TempDir(), "cosign.pub")
	write(t, pubPath, string(pub), 0o644)
	return reg.Host + "/acme/api@" + id.String(), pubPath
}

// TestReusableBuildAndPushDockerfileOnNativeRunners runs build-and-push.yml
// with the Node sample app's Dockerfile and one runner per platform: the
// plan job makes one build job per platform (BuildKit, push by digest),
// the build job merges their digests into one index, and the SBOM, scan
// gate and signing run on that index as in the layering mode. A build
// secret goes through the workflow's secret to BuildKit, masked.
func TestReusableBuildAndPushDockerfileOnNativeRunners(t *testing.T) {
	t.Parallel()
	const password, buildSecret = "act-dockerfile-key-password-4242", "act-build-secret-value-77e1"
	act, cache, keyPath, pubPath := shipFixture(t, password)
	reg, err := ocitest.StartRegistry(nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Close() })
	buildkittest.Env(t) // root, buildkitd and runc in bin/ (the action finds them there)
	nodeImage := buildkittest.Node(t, reg.Host+"/library/node:20")
	result, handoff := t.TempDir(), t.TempDir()
	wf := renderCaller(t, act.Repo, "reusable-build-and-push-dockerfile.yml", map[string]string{
		"REGISTRY":     reg.Host,
		"NODE_IMAGE":   nodeImage,
		"CACHE":        cache,
		"KEY":          keyPath,
		"KEY_PASSWORD": password,
		"BUILD_SECRET": buildSecret,
		"RESULT":       result,
	})
	start := time.Now()
	log, err := runReusable(t.Context(), t, act, wf, map[string]string{
		"GANTRY_ACT_HANDOFF": handoff,
		"SOURCE_DATE_EPOCH":  "1795179791",
	})
	t.Logf("act ran the workflow in %v (err %v)", time.Since(start).Round(time.Second), err)
	if err != nil {
		t.Fatalf("%v\n%s", err, log)
	}
	out := readOutputs(t, filepath.Join(result, "outputs"), log)
	digest, image := out["digest"], out["image"]
	repo := reg.Host + "/acme/prompt-builder-api"
	if !strings.HasPrefix(digest, "sha256:") || image != repo+"@"+digest || out["result"] != "success" {
		t.Fatalf("outputs %v, want %s@sha256:… and success\n%s", out, repo, log)
	}
	for _, want := range []string{"build linux/amd64", "build linux/arm64", "Build linux/amd64 and push it by digest", "merging:"} {
		if !strings.Contains(log, want) {
			t.Errorf("the log lacks %q: the per-platform jobs and the merge did not run as planned", want)
		}
	}
	for _, line := range strings.Split(log, "\n") {
		if (strings.Contains(line, password) || strings.Contains(line, buildSecret)) && !strings.Contains(line, "add-mask") {
			t.Errorf("a secret appears in the workflow log: %s", line)
		}
	}
	d, _ := name.NewDigest(image)
	idx, err := remote.Index(d)
	if err != nil {
		t.Fatal(err)
	}
	im, _ := idx.IndexManifest()
	var platforms []string
	for _, m := range im.Manifests {
		platforms = append(platforms, m.Platform.String())
		if !strings.Contains(out["platform-digests"], m.Digest.String()) {
			t.Errorf("platform-digests %s lacks %s", out["platform-digests"], m.Digest)
		}
	}
	slices.Sort(platforms)
	if !slices.Equal(platforms, []string{"linux/amd64", "linux/arm64"}) {
		t.Errorf("merged index platforms %v, want linux/amd64 and linux/arm64", platforms)
	}
	if !strings.Contains(out["tags"], ":act") || !strings.Contains(out["signed"], digest) || out["scan-verdict"] != "pass" {
		t.Errorf("tags %q, signed %q, verdict %q: want the act tag on the merged index, signed after the gate passed", out["tags"], out["signed"], out["scan-verdict"])
	}
	rep, err := signing.Verify(t.Context(), image, signing.Policy{Key: pubPath, Require: []string{"sbom", "provenance", "scan"}, Recursive: true, Getenv: os.Getenv})
	if err != nil || !rep.Verified {
		t.Errorf("verify %s with the public key: %v", image, err)
	}
}
