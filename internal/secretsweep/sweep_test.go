// Package secretsweep_test runs Gantry's stages one after the other, as a
// CI system other than GitHub (or a laptop) runs them — build, SBOM, scan,
// sign, verify, canary analysis, deploy, notify, release — each given
// distinctive secrets (the registry password, the signing key's password,
// the Prometheus password, the kubeconfig's token, the Slack token, the
// GitHub tokens),
// and then looks for those secrets everywhere the run left something: every
// stage's stdout (the outputs), stderr (the log and the summary), every
// summary and report file, every SBOM, SARIF and JSON report, the release
// record, every Slack message and call, the GitHub release, what the
// deploy left in the cluster, and every manifest and blob in the registry
// (images, signatures, attestations). The stages are the
// binaries make build puts in bin/.
package secretsweep_test

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/gantry-ci/gantry/internal/buildkittest"
	"github.com/gantry-ci/gantry/internal/ghaction"
	"github.com/gantry-ci/gantry/internal/ghrelease/ghreleasetest"
	"github.com/gantry-ci/gantry/internal/k8stest"
	"github.com/gantry-ci/gantry/internal/ocitest"
	"github.com/gantry-ci/gantry/internal/promtest"
	"github.com/gantry-ci/gantry/internal/signing"
	"github.com/gantry-ci/gantry/internal/slacknotify/notifytest"
	"github.com/gantry-ci/gantry/internal/testproc"
	"github.com/gantry-ci/gantry/internal/vulnscan/scantest"
)

const (
	regUser  = "sweep-bot"
	regPass  = "planted-registry-pass-5e1f0c9a"
	keyPass  = "planted-key-pass-77ab3d41"
	promPass = "planted-prometheus-pass-c08e55"
)

// run is one stage process: what it printed.
type run struct {
	stage          string
	stdout, stderr string
}

func stage(t *testing.T, bin, work, name string, env map[string]string) run {
	t.Helper()
	path := filepath.Join(bin, name)
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("%s: %v: run make build first (make test does)", name, err)
	}
	summary := filepath.Join(work, name+".summary.md")
	cmd := exec.Command(path, "--summary", summary)
	cmd.Dir = work
	// Outside Actions: no GITHUB_*; only what a shell on another CI has.
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + work, "TMPDIR=" + t.TempDir()}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s: %v\nstdout:\n%s\nstderr:\n%s", name, err, stdout.String(), stderr.String())
	}
	return run{stage: name, stdout: stdout.String(), stderr: stderr.String()}
}

func outputs(t *testing.T, r run) map[string]string {
	t.Helper()
	out, err := ghaction.ParseOutputFile(strings.NewReader(r.stdout))
	if err != nil {
		t.Fatalf("%s: stdout is not name=value outputs: %v\n%s", r.stage, err, r.stdout)
	}
	return out
}

func TestMain(m *testing.M) { k8stest.Main(m) }

const (
	deployGitHubToken = "ghs_plantedDeployToken3Vn8Qe5Lw1"
	buildSecret       = "planted-build-secret-9d2c71e4"
)

func TestNoSecretAnywhere(t *testing.T) {
	root, err := testproc.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(root, "bin")
	work := t.TempDir()
	secrets := map[string]string{
		"registry password":           regPass,
		"registry credentials (auth)": base64.StdEncoding.EncodeToString([]byte(regUser + ":" + regPass)),
		"signing key password":        keyPass,
		"Slack token":                 notifytest.Token,
		"Prometheus password":         promPass,
		"Prometheus credentials":      base64.StdEncoding.EncodeToString([]byte("gantry:" + promPass)),
		"GitHub token":                ghreleasetest.Token,
		"deploy's GitHub token":       deployGitHubToken,
		"Dockerfile build secret":     buildSecret,
	}
	cluster := k8stest.Start(t)
	ns := cluster.Namespace(t)
	kubeconfig, err := os.ReadFile(cluster.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	secrets["Kubernetes token"] = cluster.RESTConfig().BearerToken
	if !strings.Contains(string(kubeconfig), secrets["Kubernetes token"]) {
		t.Fatalf("the kubeconfig %s holds no token", cluster.Kubeconfig)
	}
	// The canary analysis' Prometheus (TLS, basic auth) scraping a stable
	// and a canary instance of the sample app under load: started first,
	// its first scrapes overlap the build.
	var targets []promtest.Target
	for _, track := range []string{"stable", "canary"} {
		app := promtest.StartApp(t, nil)
		stop := promtest.Load(t, app.URL+"/api/prompts", 60)
		t.Cleanup(func() { stop() })
		targets = append(targets, app.Target(map[string]string{"job": "api", "track": track}))
	}
	prom := promtest.StartSecuredPrometheus(t, promtest.Security{User: "gantry", Password: promPass}, targets...)

	reg, err := ocitest.StartRegistry(ocitest.BasicAuth(regUser, regPass))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Close() })
	auth := remote.WithAuth(&authn.Basic{Username: regUser, Password: regPass})
	base, _ := name.ParseReference(reg.Host + "/library/base:1")
	idx, err := ocitest.Base([]string{"linux/amd64", "linux/arm64"}, ocitest.BaseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(base, idx, auth); err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Join(work, "dist"), 0o755)
	for _, arch := range []string{"amd64", "arm64"} {
		os.WriteFile(filepath.Join(work, "dist", "app-"+arch), []byte("#!/bin/sh\necho app "+arch+"\n"), 0o755)
	}
	creds := map[string]string{"INPUT_REGISTRY-USERNAME": regUser, "INPUT_REGISTRY-PASSWORD": regPass}
	with := func(extra map[string]string) map[string]string {
		env := map[string]string{"INPUT_RELEASE-FILE": filepath.Join(work, "gantry-release.json")}
		for k, v := range creds {
			env[k] = v
		}
		for k, v := range extra {
			env[k] = v
		}
		return env
	}
	var runs []run

	r := stage(t, bin, work, "gantry-build", with(map[string]string{
		"INPUT_IMAGE":   reg.Host + "/acme/app",
		"INPUT_BASE":    base.String(),
		"INPUT_CONTEXT": work,
		"INPUT_LAYERS":  "dist/app-{arch}:/app/server",
		"INPUT_TAGS":    "type=raw,value=sweep",
	}))
	runs = append(runs, r)
	image := outputs(t, r)["image"]
	if !strings.HasPrefix(image, reg.Host+"/acme/app@sha256:") {
		t.Fatalf("build: image output %q", image)
	}

	// The Dockerfile mode: a build secret that a RUN step prints, and the
	// build's registry cache (mode=max keeps the build stage's layers).
	bb := buildkittest.Busybox(t, reg.Host+"/library/busybox:1", auth)
	dfDir := filepath.Join(work, "dockerfile-app")
	os.MkdirAll(dfDir, 0o755)
	os.WriteFile(filepath.Join(dfDir, "Dockerfile"), []byte("ARG BASE\nFROM --platform=$BUILDPLATFORM ${BASE} AS build\n"+
		"RUN --mount=type=secret,id=api_token echo \"the token is $(cat /run/secrets/api_token)\" && mkdir /out && wc -c < /run/secrets/api_token > /out/n\n"+
		"FROM ${BASE}\nCOPY --from=build /out /app\n"), 0o644)
	bkEnv := buildkittest.Env(t)
	r = stage(t, bin, work, "gantry-build", with(map[string]string{
		"INPUT_IMAGE":      reg.Host + "/acme/dockerfile-app",
		"INPUT_CONTEXT":    dfDir,
		"INPUT_DOCKERFILE": "Dockerfile",
		"INPUT_BUILD-ARGS": "BASE=" + bb,
		"INPUT_SECRETS":    "api_token=BUILD_SECRET",
		"INPUT_CACHE-TO":   "type=registry,ref=" + reg.Host + "/acme/dockerfile-app:buildcache,mode=max",
		"INPUT_TAGS":       "type=raw,value=sweep",
		"BUILD_SECRET":     buildSecret,
		"GANTRY_BUILDKITD": bkEnv["GANTRY_BUILDKITD"],
		"GANTRY_RUNC":      bkEnv["GANTRY_RUNC"],
	}))
	if !strings.Contains(r.stderr, "the token is ***") {
		t.Errorf("the Dockerfile build's log does not show the RUN step's output masked:\n%s", r.stderr)
	}
	runs = append(runs, r)

	r = stage(t, bin, work, "gantry-sbom", with(map[string]string{
		"INPUT_IMAGE":      image,
		"INPUT_OUTPUT-DIR": filepath.Join(work, "sbom"),
	}))
	runs = append(runs, r)
	sboms := outputs(t, r)["sbom-files"]

	cache := filepath.Join(t.TempDir(), "trivy")
	if err := scantest.Build(cache, filepath.Join(root, scantest.FixturesPath), time.Now().Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	r = stage(t, bin, work, "gantry-scan", with(map[string]string{
		"INPUT_IMAGE":            image,
		"INPUT_OFFLINE":          "true",
		"INPUT_CACHE-DIR":        cache,
		"INPUT_SARIF-FILE":       filepath.Join(work, "scan.sarif"),
		"INPUT_JSON-FILE":        filepath.Join(work, "scan.json"),
		"INPUT_ATTESTATION-FILE": filepath.Join(work, "scan.vuln.json"),
	}))
	runs = append(runs, r)

	priv, pub, err := signing.GenerateKeyPair([]byte(keyPass))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(work, "cosign.key"), priv, 0o600)
	os.WriteFile(filepath.Join(work, "cosign.pub"), pub, 0o644)
	r = stage(t, bin, work, "gantry-sign", with(map[string]string{
		"INPUT_IMAGE":        image,
		"INPUT_KEY":          filepath.Join(work, "cosign.key"),
		"INPUT_KEY-PASSWORD": keyPass,
		"INPUT_ATTESTATIONS": "sbom,provenance,scan",
		// What provenance records of the build; another CI sets these.
		"GITHUB_REPOSITORY": "acme/app",
		"GITHUB_SHA":        "3f1c5a7e9b2d4c6a8e0f1b3d5c7e9a1b3d5f7a9c",
		"GITHUB_RUN_ID":     "4242",
		"INPUT_SBOM-FILES":  sboms,
		"INPUT_SCAN-RESULT": filepath.Join(work, "scan.vuln.json"),
		"INPUT_REPORT-FILE": filepath.Join(work, "sign.json"),
	}))
	runs = append(runs, r)
	r = stage(t, bin, work, "gantry-sign", with(map[string]string{
		"INPUT_IMAGE":       image,
		"INPUT_KEY":         filepath.Join(work, "cosign.pub"),
		"INPUT_VERIFY":      "true",
		"INPUT_REQUIRE":     "sbom,provenance,scan",
		"INPUT_REPORT-FILE": filepath.Join(work, "verify.json"),
	}))
	runs = append(runs, r)
	if outputs(t, r)["verified"] != "true" {
		t.Fatalf("verify: outputs %v\n%s", outputs(t, r), r.stderr)
	}

	r = stage(t, bin, work, "gantry-analyze", map[string]string{
		"INPUT_PROMETHEUS-URL":      prom.URL,
		"INPUT_PROMETHEUS-USERNAME": "gantry",
		"INPUT_PROMETHEUS-PASSWORD": promPass,
		"INPUT_PROMETHEUS-CA":       string(prom.CA),
		"INPUT_SELECTOR-NEW":        `track="canary"`,
		"INPUT_SELECTOR-STABLE":     `track="stable"`,
		"INPUT_STEP":                "10%",
		"INPUT_WINDOW":              "6s",
		"INPUT_INTERVAL":            "2s",
		"INPUT_MAX-HOLD":            "40s",
		"INPUT_P99":                 "off",
		"INPUT_MEMORY":              "off",
		"INPUT_MIN-SAMPLES":         "50",
		"INPUT_DECISION-LOG":        filepath.Join(work, "decisions.jsonl"),
		"INPUT_TIMEOUT":             "2m",
	})
	runs = append(runs, r)
	if v := outputs(t, r)["verdict"]; v != "pass" {
		t.Fatalf("analyze: verdict %q\n%s", v, r.stderr)
	}

	ws := notifytest.Start()
	t.Cleanup(ws.Close)
	r = stage(t, bin, work, "gantry-notify", map[string]string{
		"INPUT_TOKEN":   notifytest.Token,
		"INPUT_CHANNEL": "#deploys",
		"INPUT_API-URL": ws.APIURL(),
		"INPUT_STAGE":   "build",
		"INPUT_STATUS":  "success",
		"INPUT_IMAGE":   image,
	})
	runs = append(runs, r)

	// The deploy: a kubeconfig's content as the input, as a CI secret holds it.
	manifest := filepath.Join(t.TempDir(), "app.yaml")
	os.WriteFile(manifest, []byte(`apiVersion: apps/v1
kind: Deployment
metadata:
  name: api
spec:
  replicas: 2
  selector:
    matchLabels: {app: api}
  template:
    metadata:
      labels: {app: api}
    spec:
      containers:
      - name: api
        image: `+reg.Host+`/acme/app:latest
`), 0o644)
	r = stage(t, bin, work, "gantry-deploy", map[string]string{
		"INPUT_ENVIRONMENT":  "staging",
		"INPUT_IMAGE":        image,
		"INPUT_MANIFESTS":    manifest,
		"INPUT_NAMESPACE":    ns,
		"INPUT_KUBECONFIG":   string(kubeconfig),
		"INPUT_GITHUB-TOKEN": deployGitHubToken,
		"INPUT_TIMEOUT":      "90s",
	})
	runs = append(runs, r)
	if st := outputs(t, r)["status"]; st != "success" {
		t.Fatalf("deploy: status %q\n%s", st, r.stderr)
	}

	// The GitHub Release of the build, on the stand-in of GitHub's
	// releases API: notes from the changelog, the SBOMs and the release
	// record attached.
	os.WriteFile(filepath.Join(work, "CHANGELOG.md"), []byte("# Changelog\n\n## [1.0.0] - 2026-12-05\n\n### Added\n- The first release.\n"), 0o644)
	gh := ghreleasetest.Start(t)
	r = stage(t, bin, work, "gantry-release", map[string]string{
		"INPUT_TAG":          "v1.0.0",
		"INPUT_REPOSITORY":   "acme/app",
		"INPUT_API-URL":      gh.URL,
		"INPUT_TOKEN":        ghreleasetest.Token,
		"INPUT_ASSETS":       "sbom/*",
		"INPUT_RELEASE-FILE": "gantry-release.json",
		"INPUT_VERIFY-KEY":   "cosign.pub",
	})
	runs = append(runs, r)

	// The sweep.
	places := map[string]string{}
	for i, r := range runs {
		places[fmt.Sprintf("%s (run %d) stdout", r.stage, i+1)] = r.stdout
		places[fmt.Sprintf("%s (run %d) stderr", r.stage, i+1)] = r.stderr
	}
	files := 0
	filepath.WalkDir(work, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Name() == "cosign.key" {
			return err // the encrypted key file holds no password
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		files++
		places["file "+strings.TrimPrefix(p, work+"/")] = string(b)
		return nil
	})
	for i, m := range ws.Messages() {
		places[fmt.Sprintf("Slack message %d", i+1)] = fmt.Sprintf("%s %s %s", m.Text, m.Blocks, m.Attachments)
	}
	for i, c := range ws.Calls() {
		// The token authenticates the call (Slack's API takes it as a
		// form field): every other field is content.
		form := maps.Clone(c.Form)
		delete(form, "token")
		places[fmt.Sprintf("Slack call %d (%s) form", i+1, c.Method)] = form.Encode()
	}
	blobs := registryContent(t, reg.Host, auth, places)
	// What the deploy left in the cluster.
	deps, err := cluster.Clientset().AppsV1().Deployments(ns).List(t.Context(), metav1.ListOptions{})
	if err != nil || len(deps.Items) == 0 {
		t.Fatalf("Deployments in %s: %v", ns, err)
	}
	for _, d := range deps.Items {
		b, _ := json.Marshal(d)
		places["Deployment "+d.Name] = string(b)
	}
	if rss, err := cluster.Clientset().AppsV1().ReplicaSets(ns).List(t.Context(), metav1.ListOptions{}); err == nil {
		for _, rs := range rss.Items {
			b, _ := json.Marshal(rs)
			places["ReplicaSet "+rs.Name] = string(b)
		}
	}
	releases := gh.Releases("acme/app")
	for _, rel := range releases {
		places["GitHub release "+rel.TagName+" body"] = rel.Name + "\n" + rel.Body
		for _, a := range rel.Assets {
			places["GitHub release asset "+a.Name] = string(a.Data)
		}
	}
	if len(releases) != 1 || len(releases[0].Assets) < 3 {
		t.Errorf("GitHub releases %+v: want one with the SBOMs and the release record", releases)
	}

	for where, text := range places {
		for what, secret := range secrets {
			if strings.Contains(text, secret) {
				t.Errorf("the %s is in %s", what, where)
			}
		}
	}
	// The sweep looked where the secrets could have gone.
	if files < 8 || blobs < 10 || len(ws.Messages()) == 0 {
		t.Errorf("swept %d files, %d registry objects, %d Slack messages: too few, the run left more", files, blobs, len(ws.Messages()))
	}
	for _, want := range []string{"file gantry-release.json", "file scan.sarif", "file gantry-sign.summary.md", "file decisions.jsonl"} {
		if _, ok := places[want]; !ok {
			t.Errorf("nothing swept as %s", want)
		}
	}
	payloads, layers := 0, 0
	for where := range places {
		if strings.Contains(where, "(payload ") {
			payloads++
		}
		if strings.HasSuffix(where, "(gunzipped)") {
			layers++
		}
	}
	if payloads < 3 || layers < 2 {
		t.Errorf("decoded %d attestation payloads and %d image layers: the signed image has more", payloads, layers)
	}
	t.Logf("swept %d places: %d files, %d registry objects, %d Slack messages and %d calls", len(places), files, blobs, len(ws.Messages()), len(ws.Calls()))
}

// registryContent adds every manifest and blob of every repository of the
// registry (by its catalog and tags, and every digest a manifest names) to
// places, and returns how many it read.
func registryContent(t *testing.T, host string, auth remote.Option, places map[string]string) int {
	t.Helper()
	regName, err := name.NewRegistry(host)
	if err != nil {
		t.Fatal(err)
	}
	repos, err := remote.Catalog(t.Context(), regName, auth)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, repoName := range repos {
		repo := regName.Repo(repoName)
		tags, err := remote.List(repo, auth)
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]bool{}
		var queue []string
		for _, tag := range tags {
			queue = append(queue, repo.Tag(tag).String())
		}
		for len(queue) > 0 {
			ref := queue[0]
			queue = queue[1:]
			if seen[ref] {
				continue
			}
			seen[ref] = true
			r, err := name.ParseReference(ref)
			if err != nil {
				t.Fatal(err)
			}
			desc, err := remote.Get(r, auth)
			if err != nil {
				t.Fatalf("%s: %v", ref, err)
			}
			n++
			places["registry manifest "+ref] = string(desc.Manifest)
			// Every digest the manifest names (index entries, config,
			// layers, subjects, digests in annotations): a manifest of
			// this repository is read as one, a blob as a blob; a digest
			// that is neither here is only a value.
			for _, d := range digestsIn(string(desc.Manifest)) {
				child := repo.Digest(d)
				if seen[child.String()] {
					continue
				}
				if _, err := remote.Head(child, auth); err == nil {
					queue = append(queue, child.String())
					continue
				}
				seen[child.String()] = true
				layer, err := remote.Layer(child, auth)
				if err != nil {
					t.Fatal(err)
				}
				rc, err := layer.Compressed()
				if err != nil {
					continue // neither a manifest nor a blob of this repository
				}
				b, _ := io.ReadAll(rc)
				rc.Close()
				n++
				addBlob(t, places, "registry blob "+child.String(), b)
			}
			// The referrers of a manifest: signatures and attestations.
			dg := repo.Digest(desc.Digest.String())
			queue = append(queue, dg.String())
			if idx, err := remote.Referrers(dg, auth); err == nil {
				m, _ := idx.IndexManifest()
				for _, ref := range m.Manifests {
					queue = append(queue, repo.Digest(ref.Digest.String()).String())
				}
			}
		}
	}
	return n
}

// addBlob adds a blob as it is, gunzipped when it is gzip (image
// layers), and the decoded payload of every DSSE envelope or Sigstore
// bundle in it (attestations carry their statement base64-encoded).
func addBlob(t *testing.T, places map[string]string, where string, b []byte) {
	t.Helper()
	places[where] = string(b)
	if len(b) > 2 && b[0] == 0x1f && b[1] == 0x8b {
		zr, err := gzip.NewReader(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("%s: %v", where, err)
		}
		raw, err := io.ReadAll(zr)
		if err != nil {
			t.Fatalf("%s: %v", where, err)
		}
		places[where+" (gunzipped)"] = string(raw)
		return
	}
	var doc any
	if json.Unmarshal(b, &doc) != nil {
		return
	}
	i := 0
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, x := range v {
				if s, ok := x.(string); ok && k == "payload" {
					if raw, err := base64.StdEncoding.DecodeString(s); err == nil {
						i++
						places[fmt.Sprintf("%s (payload %d)", where, i)] = string(raw)
					}
				}
				walk(x)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	walk(doc)
}

// digestsIn lists the sha256 digests a manifest's JSON names.
func digestsIn(manifest string) []string {
	var out []string
	for rest := manifest; ; {
		i := strings.Index(rest, "sha256:")
		if i < 0 || len(rest) < i+71 {
			return out
		}
		out = append(out, rest[i:i+71])
		rest = rest[i+71:]
	}
}
