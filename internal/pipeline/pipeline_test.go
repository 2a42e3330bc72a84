package pipeline_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/gantry-ci/gantry/internal/analysis"
	"github.com/gantry-ci/gantry/internal/ghaction"
	"github.com/gantry-ci/gantry/internal/ghrelease"
	"github.com/gantry-ci/gantry/internal/image"
	"github.com/gantry-ci/gantry/internal/k8stest"
	"github.com/gantry-ci/gantry/internal/localregistry"
	"github.com/gantry-ci/gantry/internal/pipeline"
	"github.com/gantry-ci/gantry/internal/rollout"
	"github.com/gantry-ci/gantry/internal/runctx/detect"
	"github.com/gantry-ci/gantry/internal/sbom"
	"github.com/gantry-ci/gantry/internal/signing"
	"github.com/gantry-ci/gantry/internal/slacknotify"
	"github.com/gantry-ci/gantry/internal/slacknotify/notifytest"
	"github.com/gantry-ci/gantry/internal/testproc"
	"github.com/gantry-ci/gantry/internal/vulnscan"
	"github.com/gantry-ci/gantry/internal/vulnscan/scantest"
)

func TestMain(m *testing.M) { k8stest.Main(m) }

// The stage functions the gantry command wires (cmd/gantry/run.go).
var stages = map[string]pipeline.StageFunc{
	"build": image.Stage, "sbom": sbom.Stage, "scan": vulnscan.Stage, "sign": signing.Stage,
	"deploy": rollout.Stage, "analyze": analysis.Stage, "notify": slacknotify.Stage, "release": ghrelease.Stage,
}

const gantryYAML = `# The testdata app, as a team would describe it.
version: 1
build:
  image: ghcr.io/acme/prompt-builder
  base: scratch
  platforms: [linux/amd64, linux/arm64]
  layers: ["dist/server-{arch}:/app/server"]
  entrypoint: [/app/server]
  user: "65532:65532"
scan:
  path: repo
  scanners: vuln
  severity: CRITICAL
  offline: true
  cache-dir: .gantry/scan-cache
deploy:
  manifests: deploy/base
  environment: staging
  environments:
    staging:
      namespace: prompt-builder-staging
`

// app makes a temporary copy of the testdata app as a repository that
// ships with Gantry: the server built for both platforms (what the team's
// build command leaves in dist/), a Node lockfile for the path scan, its
// Kubernetes manifests, a gantry.yaml, the scan DB in the cache a CI cache
// would restore, and one Git commit.
func app(t *testing.T, root string) (dir, commit string) {
	t.Helper()
	dir = t.TempDir()
	for _, arch := range []string{"amd64", "arm64"} {
		cmd := exec.Command("go", "build", "-trimpath", "-buildvcs=false", "-ldflags=-s -w", "-o", filepath.Join(dir, "dist", "server-"+arch), ".")
		cmd.Dir = filepath.Join(root, "testdata", "app")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+arch, "GOFLAGS=-trimpath -buildvcs=false")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("building the app for %s: %v\n%s", arch, err, out)
		}
	}
	for src, dst := range map[string]string{"testdata/scan/repo": "repo", "testdata/k8s": "deploy"} {
		if err := os.CopyFS(filepath.Join(dir, dst), os.DirFS(filepath.Join(root, src))); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "gantry.yaml"), []byte(gantryYAML), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, ".gitignore"), []byte("dist/\n.gantry/\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := scantest.Build(filepath.Join(dir, ".gantry", "scan-cache"), filepath.Join(root, scantest.FixturesPath), time.Now().Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	git := func(args ...string) string {
		cmd := exec.Command("git", args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=Ada", "GIT_AUTHOR_EMAIL=ada@example.com", "GIT_COMMITTER_NAME=Ada",
			"GIT_COMMITTER_EMAIL=ada@example.com", "GIT_AUTHOR_DATE=2026-11-20T13:03:11Z", "GIT_COMMITTER_DATE=2026-11-20T13:03:11Z")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	git("init", "-q", "-b", "main")
	git("remote", "add", "origin", "https://github.com/acme/prompt-builder.git")
	git("add", ".")
	git("commit", "-q", "-m", "the app")
	return dir, git("rev-parse", "HEAD")
}

type runOpts struct {
	env map[string]string
	pipeline.Options
}

// run runs the pipeline in dir as `gantry run` does, with its own HOME (no
// ~/.kube/config) and the environment given.
func run(t *testing.T, dir string, o runOpts) (*pipeline.Report, string, error) {
	t.Helper()
	t.Chdir(dir) // gantry run works in the repository; restored after the test
	env := map[string]string{"HOME": t.TempDir(), "PATH": os.Getenv("PATH")}
	for k, v := range o.env {
		env[k] = v
	}
	getenv := func(k string) string { return env[k] }
	rc, err := detect.FromCI(getenv, dir, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	opts := o.Options
	opts.Dir, opts.Getenv, opts.Log, opts.Stages = dir, getenv, &log, stages
	opts.Configure = func(_ string, eo *ghaction.Options) { eo.Run = rc }
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	rep, err := pipeline.Run(ctx, opts)
	t.Logf("gantry run log:\n%s", log.String())
	return rep, log.String(), err
}

func status(rep *pipeline.Report) map[string]string {
	m := map[string]string{}
	for _, s := range rep.Stages {
		m[s.Stage] = s.Status
	}
	return m
}

// TestRunEndToEnd: gantry run on the testdata app with its gantry.yaml and
// nothing else: the image built on scratch for two platforms and pushed to
// the local registry on disk (labelled with the checkout's commit), SBOMs,
// the scan gate passed, the image signed with the local key and attested
// (the cosign CLI verifies both), the staging deploy planned without a
// cluster; then --only sign against the last run's image after the registry
// restarted; a failing gate stops the run before signing; and with a real
// control plane the staging deploy happens.
func TestRunEndToEnd(t *testing.T) {
	root, err := testproc.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	// Tools and the control plane are found from the repository, before
	// the runs change the working directory.
	cosign := testproc.Tool(t, "cosign")
	c := k8stest.Start(t)
	dir, commit := app(t, root)

	rep, log, err := run(t, dir, runOpts{Options: pipeline.Options{Local: true}})
	if err != nil {
		t.Fatalf("gantry run: %v", err)
	}
	want := map[string]string{"build": "passed", "sbom": "passed", "scan": "passed", "sign": "passed", "deploy": "planned", "analyze": "skipped", "notify": "skipped"}
	if got := status(rep); !mapsEqual(got, want) {
		t.Fatalf("stages %v, want %v", got, want)
	}
	if !strings.HasPrefix(rep.Image, rep.Registry+"/acme/prompt-builder@sha256:") {
		t.Fatalf("image %q, want it in the local registry %s under build.image's path", rep.Image, rep.Registry)
	}
	for _, line := range []string{"local registry http://", "made a LOCAL throwaway signing key", "notify will be skipped: no Slack token"} {
		if !strings.Contains(log, line) {
			t.Errorf("log lacks %q", line)
		}
	}
	// The run stopped its registry; its content is on disk: serve it again.
	reg, err := localregistry.Start(filepath.Join(dir, ".gantry", "registry"), rep.Registry)
	if err != nil {
		t.Fatal(err)
	}
	ref, _ := name.ParseReference(rep.Image)
	idx, err := remote.Index(ref)
	if err != nil {
		t.Fatal(err)
	}
	im, _ := idx.IndexManifest()
	if len(im.Manifests) != 2 || im.Annotations["org.opencontainers.image.revision"] != commit || im.Annotations["org.opencontainers.image.source"] != "https://github.com/acme/prompt-builder" {
		t.Errorf("index: %d manifests, annotations %v; want 2 and revision %s", len(im.Manifests), im.Annotations, commit)
	}
	sb, err := os.ReadFile(filepath.Join(dir, ".gantry", "run", "sbom", "linux-arm64.spdx.json"))
	if err != nil || !bytes.Contains(sb, []byte("github.com/prometheus/client_golang")) {
		t.Errorf("arm64 SPDX SBOM lacks the app's Go modules (%v)", err)
	}
	scan, _ := rep.Result("scan")
	if scan.Outputs["verdict"] != "pass" || scan.Outputs["high"] == "0" {
		t.Errorf("scan outputs %v: want a pass at CRITICAL with lodash's HIGH findings counted", scan.Outputs)
	}
	home := t.TempDir()
	for _, args := range [][]string{
		{"verify", "--key", ".gantry/local-signing.pub", "--insecure-ignore-tlog=true", rep.Image},
		// SBOMs are attested on each platform's manifest, the scan on the index.
		{"verify-attestation", "--key", ".gantry/local-signing.pub", "--insecure-ignore-tlog=true", "--type", "spdxjson", ref.Context().Digest(im.Manifests[0].Digest.String()).String()},
		{"verify-attestation", "--key", ".gantry/local-signing.pub", "--insecure-ignore-tlog=true", "--type", "vuln", rep.Image},
	} {
		cmd := exec.Command(cosign, args...)
		cmd.Dir = dir
		cmd.Env = []string{"HOME=" + home, "PATH=" + os.Getenv("PATH"), "TUF_ROOT=" + filepath.Join(home, "tuf"), "SIGSTORE_NO_CACHE=true"}
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("cosign %s: %v\n%s", args[0], err, out)
		}
	}
	deploy, _ := rep.Result("deploy")
	plan, err := os.ReadFile(filepath.Join(dir, ".gantry", "run", "deploy-staging.yaml"))
	digest := rep.Image[strings.Index(rep.Image, "@")+1:]
	if err != nil || !bytes.Contains(plan, []byte("image: "+rep.Image)) || !strings.Contains(deploy.Why, "no cluster") {
		t.Errorf("deploy plan (%v): %q\nrendered:\n%s", err, deploy.Why, plan)
	}
	var onDisk pipeline.Report
	if b, err := os.ReadFile(filepath.Join(dir, pipeline.ReportFile())); err != nil || json.Unmarshal(b, &onDisk) != nil || onDisk.Image != rep.Image {
		t.Errorf("report.json: %v, image %q", err, onDisk.Image)
	}

	reg.Close()

	// --only sign: the last run's image, from the registry started again
	// on the same directory and address.
	rep2, _, err := run(t, dir, runOpts{Options: pipeline.Options{Only: []string{"sign"}}})
	if err != nil || status(rep2)["sign"] != "passed" || rep2.Registry != rep.Registry {
		t.Fatalf("--only sign: %v, %v, registry %s (was %s)", err, status(rep2), rep2.Registry, rep.Registry)
	}

	// --dry-run with the cluster at hand: the image to the local registry
	// only, deploy as the stage's plan (nothing applied), nobody notified
	// though a Slack token is set.
	ws := notifytest.Start()
	defer ws.Close()
	slack := map[string]string{"GANTRY_NOTIFY_TOKEN": notifytest.Token, "GANTRY_NOTIFY_API_URL": ws.APIURL(), "GANTRY_NOTIFY_CHANNEL": "#deploys"}
	dryNS := c.Namespace(t)
	dryEnv := map[string]string{"GANTRY_DEPLOY_KUBECONFIG": c.Kubeconfig, "GANTRY_DEPLOY_NAMESPACE": dryNS}
	for k, v := range slack {
		dryEnv[k] = v
	}
	rep5, _, err := run(t, dir, runOpts{env: dryEnv, Options: pipeline.Options{DryRun: true}})
	if err != nil {
		t.Fatalf("--dry-run: %v", err)
	}
	if s := status(rep5); s["deploy"] != "planned" || s["notify"] != "skipped" || !strings.HasPrefix(rep5.Image, rep5.Registry+"/") {
		t.Errorf("--dry-run: stages %v, image %s", s, rep5.Image)
	}
	if plan, err := os.ReadFile(filepath.Join(dir, ".gantry", "run", "deploy-plan.json")); err != nil || !bytes.Contains(plan, []byte(digest)) {
		t.Errorf("--dry-run: the deploy stage's plan file (%v) does not name the digest", err)
	}
	if deps, err := kubernetes.NewForConfigOrDie(mustConfig(t, c.Kubeconfig)).AppsV1().Deployments(dryNS).List(t.Context(), metav1.ListOptions{}); err != nil || len(deps.Items) != 0 {
		t.Errorf("--dry-run applied %d Deployments (%v)", len(deps.Items), err)
	}
	if n := len(ws.Messages()); n != 0 {
		t.Errorf("--dry-run posted %d Slack messages", n)
	}

	// A gate that fails stops the run: nothing is signed or deployed, and
	// the Slack message says the run failed.
	failEnv := map[string]string{"GANTRY_SCAN_SEVERITY": "CRITICAL,HIGH"}
	for k, v := range slack {
		failEnv[k] = v
	}
	rep3, _, err := run(t, dir, runOpts{env: failEnv, Options: pipeline.Options{Local: true}})
	if err == nil || !strings.Contains(err.Error(), "scan") || rep3.Status != "failed" {
		t.Fatalf("failing gate: err %v, status %s", err, rep3.Status)
	}
	if s := status(rep3); s["scan"] != "failed" || s["sign"] != "skipped" || s["deploy"] != "skipped" {
		t.Errorf("failing gate: stages %v", s)
	}
	if sign, _ := rep3.Result("sign"); sign.Why != "not run: scan failed" {
		t.Errorf("sign skipped because %q", sign.Why)
	}
	if msgs := ws.Messages(); status(rep3)["notify"] != "passed" || len(msgs) != 1 || !strings.Contains(msgs[0].Text, "Failed") || !strings.Contains(msgs[0].Text, "scan") {
		t.Errorf("failing gate: notify %s, messages %+v: want one saying the scan failed", status(rep3)["notify"], msgs)
	}

	// With a cluster: the staging deploy, of the same digest.
	ns := c.Namespace(t)
	deployEnv := map[string]string{"GANTRY_DEPLOY_KUBECONFIG": c.Kubeconfig, "GANTRY_DEPLOY_NAMESPACE": ns}
	for k, v := range slack {
		deployEnv[k] = v
	}
	rep4, _, err := run(t, dir, runOpts{env: deployEnv, Options: pipeline.Options{Local: true}})
	if err != nil {
		t.Fatalf("deploy run: %v", err)
	}
	dep, _ := rep4.Result("deploy")
	if dep.Status != "passed" || dep.Outputs["status"] != "success" || !strings.HasSuffix(dep.Outputs["digest"], digest) {
		t.Fatalf("deploy: %s %v", dep.Status, dep.Outputs)
	}
	cs := kubernetes.NewForConfigOrDie(mustConfig(t, c.Kubeconfig))
	var d *appsv1.Deployment
	if d, err = cs.AppsV1().Deployments(ns).Get(t.Context(), "prompt-builder", metav1.GetOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := d.Spec.Template.Spec.Containers[0].Image; !strings.HasSuffix(got, "@"+digest) || !strings.Contains(got, "/acme/prompt-builder") {
		t.Errorf("the Deployment runs %s, want the built digest %s", got, digest)
	}
	msgs := ws.Messages()[1:] // after the failing gate's
	if status(rep4)["notify"] != "passed" || len(msgs) != 1 || !strings.Contains(msgs[0].Text, "Succeeded") || !strings.Contains(msgs[0].Text, "deploy → staging") {
		t.Errorf("notify %s, messages %+v: want one message of the passed run", status(rep4)["notify"], msgs)
	}
}

func mustConfig(t *testing.T, kubeconfig string) *rest.Config {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// TestRunGitOpsTarget: with deploy.target argocd, gantry run does not
// render manifests: without a way to reach Argo CD the deploy does not run
// and says what enables it, and an image in this machine's local registry
// is never promoted into the shared config repository.
func TestRunGitOpsTarget(t *testing.T) {
	root, err := testproc.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	dir, _ := app(t, root)
	cfg := strings.Replace(gantryYAML, "deploy:\n  manifests: deploy/base\n", "deploy:\n  target: argocd\n  argocd-application: prompt-builder-staging\n", 1)
	if err := os.WriteFile(filepath.Join(dir, "gantry.yaml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	rep, log, err := run(t, dir, runOpts{Options: pipeline.Options{Local: true, Until: "deploy"}})
	if err != nil {
		t.Fatalf("gantry run: %v", err)
	}
	if got := status(rep)["deploy"]; got != "skipped" || !strings.Contains(log, "target argocd: no way to reach Argo CD") {
		t.Errorf("deploy %s without Argo CD; log:\n%s", got, log)
	}

	rep, log, err = run(t, dir, runOpts{Options: pipeline.Options{Local: true, Only: []string{"deploy"}},
		env: map[string]string{"GANTRY_DEPLOY_ARGOCD_URL": "http://127.0.0.1:1"}})
	if err == nil || status(rep)["deploy"] != "failed" || !strings.Contains(log, "local registry on this machine, which no cluster can pull") {
		t.Errorf("deploy of a local-registry image with target argocd: err %v, stages %v; log:\n%s", err, status(rep), log)
	}
}
