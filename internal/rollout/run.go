// Package rollout is Gantry's deploy stage: it renders the manifests with
// the image pinned by digest, server-side applies them, waits for the
// rollout like kubectl rollout status but fails fast on pods that cannot
// start, rolls back automatically, and reports to GitHub Deployments. One
// deploy per environment at a time, by a Lease.
package rollout

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"helm.sh/helm/v4/pkg/release/common"
	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/rest"

	"github.com/gantry-ci/gantry/internal/ghaction"
	"github.com/gantry-ci/gantry/internal/githubapi"
	"github.com/gantry-ci/gantry/internal/manifests"
	"github.com/gantry-ci/gantry/internal/metadata"
	"github.com/gantry-ci/gantry/internal/progressive"
	"github.com/gantry-ci/gantry/internal/signing"
)

// Inputs are gantry-deploy's inputs (actions/deploy/action.yml).
type Inputs struct {
	Environment string `input:"environment" required:"true"`
	Image       string `input:"image"`
	Manifests   string `input:"manifests"`
	// A Helm chart instead of manifests (helm v4 SDK): a local directory or
	// .tgz, oci://host/repo/chart (with :tag or @sha256:…), or a chart name
	// with ChartRepository. See the README's Helm section.
	Chart           string   `input:"chart"`
	ChartVersion    string   `input:"chart-version"`
	ChartRepository string   `input:"chart-repository"`
	Values          []string `input:"values" list:"lines"`
	Set             []string `input:"set" list:"lines"`
	ImageValues     []string `input:"image-values" list:"lines"`
	ReleaseName     string   `input:"release-name"`
	ChartUsername   string   `input:"chart-username"`
	ChartPassword   string   `input:"chart-password" secret:"true"`
	ChartPlainHTTP  bool     `input:"chart-plain-http" default:"false"`
	// HelmRelease also records each deploy of a chart as a Helm release
	// (helm's Secrets), for teams that keep Helm as the source of truth.
	HelmRelease    bool          `input:"helm-release" default:"false"`
	Strategy       string        `input:"strategy" default:"rolling"`
	Action         string        `input:"action" default:"deploy"`
	RollbackTo     string        `input:"rollback-to" default:"previous"`
	Namespace      string        `input:"namespace"`
	Deployment     string        `input:"deployment"`
	AutoRollback   bool          `input:"auto-rollback" default:"true"`
	Lock           string        `input:"lock" default:"wait"`
	Timeout        time.Duration `input:"timeout" default:"10m"`
	Kubeconfig     string        `input:"kubeconfig"`
	GitHubToken    string        `input:"github-token" secret:"true"`
	EnvironmentURL string        `input:"environment-url"`
	// ProductionEnvironment marks the GitHub Deployment as production:
	// "true" or "false"; empty means by the environment's name, exactly
	// production or prod (any case).
	ProductionEnvironment string `input:"production-environment"`
	PlanFile              string `input:"plan-file" default:"gantry-plan.json"`
	// ForceConflicts takes over fields the manifests set that another
	// field manager owns with another value; without it such an apply
	// fails naming the manager and the fields.
	ForceConflicts bool `input:"force-conflicts" default:"false"`
	// Prune deletes, once a rolling deploy succeeded, the objects the
	// environment's deployed release applied that these manifests no
	// longer have (never Namespaces or CRDs).
	Prune bool `input:"prune" default:"true"`
	// ReleaseHistory is how many release records are kept per environment.
	ReleaseHistory int `input:"release-history" default:"10"`

	// GitOps (target argocd): the digest is written to a config
	// repository and Argo CD syncs it; nothing is applied by Gantry. See
	// gitops.go and the README's GitOps section.
	Target              string `input:"target" default:"kubernetes"`
	GitOpsRepository    string `input:"gitops-repository"`
	GitOpsBranch        string `input:"gitops-branch"`
	GitOpsPath          string `input:"gitops-path"`
	GitOpsToken         string `input:"gitops-token" secret:"true"`
	GitOpsUsername      string `input:"gitops-username"`
	GitOpsSSHKey        string `input:"gitops-ssh-key" secret:"true"`
	GitOpsKnownHosts    string `input:"gitops-known-hosts"`
	KustomizeImage      string `input:"kustomize-image"`
	ImagePath           string `input:"image-path"`
	ImageRepositoryPath string `input:"image-repository-path"`
	Promote             string `input:"promote" default:"push"`
	AutoMerge           bool   `input:"auto-merge" default:"false"`
	MergeMethod         string `input:"merge-method" default:"squash"`
	ArgoCDApplication   string `input:"argocd-application"`
	ArgoCDNamespace     string `input:"argocd-namespace" default:"argocd"`
	ArgoCDURL           string `input:"argocd-url"`
	ArgoCDToken         string `input:"argocd-token" secret:"true"`
	ArgoCDCA            string `input:"argocd-ca"`
	ArgoCDInsecure      bool   `input:"argocd-insecure" default:"false"`
	Sync                bool   `input:"sync" default:"false"`

	// Verify-before-deploy: with a key or a certificate identity set, the
	// image's signature (and the attestations in VerifyRequire) must verify
	// before anything is applied. VerifySourceRepository narrows a keyless
	// identity to runs of one repository (the certificate's Source
	// Repository URI): every caller of a reusable workflow signs with that
	// workflow's identity.
	VerifyKey                       string   `input:"verify-key"`
	VerifyCertificateIdentity       string   `input:"verify-certificate-identity"`
	VerifyCertificateIdentityRegexp string   `input:"verify-certificate-identity-regexp"`
	VerifySourceRepository          string   `input:"verify-source-repository"`
	VerifyCertificateOIDCIssuer     string   `input:"verify-certificate-oidc-issuer" default:"https://token.actions.githubusercontent.com"`
	VerifyTrustedRoot               string   `input:"verify-trusted-root"`
	VerifyRequire                   []string `input:"verify-require"`

	// Progressive delivery (strategy blue-green or canary): the new version
	// runs as Deployment <deployment>-canary behind Service CanaryService,
	// and the traffic router moves the route's traffic to it step by step,
	// each step analysed against Prometheus. See docs/deploy-progressive.md.
	TrafficRouter string `input:"traffic-router" default:"gateway-api"`
	Route         string `input:"route"`
	StableService string `input:"stable-service"`
	CanaryService string `input:"canary-service"`
	// Steps has no default here: empty is progressive.DefaultSteps for a
	// new rollout, and the recorded schedule for resume and promote, which
	// must tell an empty input from one given (fromRecord).
	Steps       string        `input:"steps"`
	Bake        time.Duration `input:"bake" default:"0s"`
	SmokeURL    string        `input:"smoke-url"`
	SmokeExpect string        `input:"smoke-expect" default:"200"`
	// Rollout names the existing Argo Rollouts Rollout to roll out
	// (traffic-router argo-rollouts); empty: the one in the manifests.
	Rollout string `input:"rollout"`

	// Canary analysis, named as gantry-analyze's inputs.
	PrometheusURL     string        `input:"prometheus-url"`
	PrometheusToken   string        `input:"prometheus-token" secret:"true"`
	PrometheusHeaders []string      `input:"prometheus-headers" list:"lines" secret:"true"`
	PrometheusUser    string        `input:"prometheus-username"`
	PrometheusPass    string        `input:"prometheus-password" secret:"true"`
	PrometheusCA      string        `input:"prometheus-ca"`
	SelectorNew       string        `input:"selector-new"`
	SelectorStable    string        `input:"selector-stable"`
	Interval          time.Duration `input:"interval" default:"30s"`
	MaxHold           time.Duration `input:"max-hold" default:"10m"`
	SuccessRate       string        `input:"success-rate" default:"95%"`
	P95               string        `input:"p95" default:"1000ms"`
	P99               string        `input:"p99" default:"2000ms"`
	ErrorRate         string        `input:"error-rate" default:"5%"`
	Memory            string        `input:"memory" default:"90%"`
	MinSamples        int           `input:"min-samples" default:"100"`
	Confidence        string        `input:"confidence" default:"0.99"`
	Margin            string        `input:"margin" default:"1%"`
	NoData            string        `input:"no-data" default:"fail"`
	Preset            string        `input:"preset"`
	Metric            []string      `input:"metric" list:"lines"`
	DecisionLog       string        `input:"decision-log" default:"gantry-decisions.jsonl"`

	// Git is the run's GitHub context (commit, repository, run URL).
	Git metadata.Context `input:"-"`
	// GitHubAPIURL is the REST API base (GITHUB_API_URL); "" is github.com.
	GitHubAPIURL string `input:"-"`
	// RESTConfig, when set, is used instead of Kubeconfig (tests).
	RESTConfig *rest.Config `input:"-"`
	// Keychain resolves registry credentials for tag resolution and
	// signature verification.
	Keychain authn.Keychain `input:"-"`
	// Getenv resolves verify-key env://VAR references.
	Getenv func(string) string `input:"-"`
	// Log receives progress lines; nil discards them.
	Log ghaction.Logger `input:"-"`
	// Poll is how often rollout status is read; zero means 1s.
	Poll time.Duration `input:"-"`
	// LeaseDuration is how long a lease outlives its last renewal; zero means 60s.
	LeaseDuration time.Duration `input:"-"`
	// Holder names this run in the lease; zero means the run URL, or host and pid.
	Holder string `input:"-"`
}

// Outputs are gantry-deploy's results.
type Outputs struct {
	Revision       string `output:"revision"`
	Digest         string `output:"digest"`
	PreviousDigest string `output:"previous-digest"`
	Status         string `output:"status"`
	DeploymentURL  string `output:"deployment-url"`
	// DecisionLog is the canary analysis' decision log (blue-green, canary).
	DecisionLog string `output:"decision-log"`
	// Why is, when the analysis stopped a rollout, its reason in one line:
	// the step, each failed check's value against its limit and the sample
	// sizes.
	Why string `output:"why"`
	// GitOps (target argocd): the config repository's commit that carries
	// the digest, its web URL when the host is known, and the pull
	// request (promote: pull-request).
	GitOpsCommit    string `output:"gitops-commit"`
	GitOpsCommitURL string `output:"gitops-commit-url"`
	PullRequestURL  string `output:"pull-request-url"`

	// Summary is the Markdown job summary.
	Summary string `output:"-"`
	// Plan is the plan of action: plan.
	Plan *Plan `output:"-"`
	// Failure is why a deploy failed, when it did.
	Failure *Failure `output:"-"`
}

// Statuses a deploy ends in.
const (
	StatusSuccess    = "success"
	StatusFailure    = "failure"
	StatusRolledBack = "rolled-back"
	StatusPlanned    = "planned"
	// StatusAborted: action abort sent all traffic back to stable.
	StatusAborted = "aborted"
	// StatusPaused: a progressive rollout holds where it is (no-data:
	// pause); a later run resumes or aborts it.
	StatusPaused = "paused"
)

// Annotations Gantry writes on every workload it deploys.
const (
	AnnotationDigest   = "gantry.dev/digest"
	AnnotationRevision = "gantry.dev/git-sha"
	AnnotationRunURL   = "gantry.dev/run-url"
	AnnotationEnv      = "gantry.dev/environment"
	// AnnotationRollbackReason says why a rollback put this version back.
	AnnotationRollbackReason = "gantry.dev/rollback-reason"
)

// Validate checks the inputs that need no cluster.
func (in *Inputs) Validate() error {
	switch in.Target {
	case TargetKubernetes, "": // "": Go callers that predate the input
	case TargetArgoCD:
		return in.validateGitOps()
	default:
		return fmt.Errorf(`input "target" is %q: use kubernetes (Gantry applies to the cluster) or argocd (Gantry promotes in a config repository and Argo CD syncs)`, in.Target)
	}
	var errs []error
	progressiveStrategy := in.Strategy == "blue-green" || in.Strategy == "canary"
	// argo-rollouts finds its Rollout by "rollout" or "manifests" (validateArgo).
	argo := progressiveStrategy && in.TrafficRouter == ArgoRollouts
	switch in.Action {
	case "resume", "promote", "abort":
		if !progressiveStrategy {
			errs = append(errs, fmt.Errorf(`input "action" %s needs strategy blue-green or canary (the strategy of the rollout to %s): set input "strategy"`, in.Action, in.Action))
		}
		if in.Action != "abort" && in.Manifests == "" && !argo {
			errs = append(errs, fmt.Errorf(`input "manifests" is required for action %s: the manifests of the rollout in progress (the stable Deployment is updated from them at promotion)`, in.Action))
		}
		if in.Action == "abort" && in.Manifests == "" && in.Namespace == "" && !argo {
			errs = append(errs, errors.New(`action abort needs the namespace: set "namespace", or "manifests"`))
		}
	case "deploy", "plan":
		if in.Image == "" {
			errs = append(errs, fmt.Errorf(`input "image" is required for action %s: the image by digest (repo@sha256:…), e.g. the build stage's image output`, in.Action))
		}
		if in.Manifests == "" && in.Chart == "" && !argo {
			errs = append(errs, fmt.Errorf(`input "manifests" (or "chart") is required for action %s: a kustomize directory (k8s/overlays/staging), a YAML file/directory, or a Helm chart`, in.Action))
		}
	case "rollback":
		if in.Manifests == "" && in.Deployment == "" && in.Namespace == "" {
			errs = append(errs, errors.New(`action rollback needs to know where the release runs: set "namespace" (the whole release, from its history), "manifests", or "deployment" and "namespace" (one Deployment by its own revisions)`))
		}
		if _, err := ParseRollbackTarget(in.RollbackTo); err != nil {
			errs = append(errs, err)
		}
	default:
		errs = append(errs, fmt.Errorf(`input "action" is %q: use deploy, rollback, plan, or for blue-green and canary resume, promote or abort`, in.Action))
	}
	switch in.Strategy {
	case "rolling":
	case "canary", "blue-green":
		if in.Action != "rollback" {
			errs = append(errs, in.validateProgressive()...)
		}
	default:
		errs = append(errs, fmt.Errorf(`input "strategy" is %q: use rolling, blue-green or canary`, in.Strategy))
	}
	if p := in.ProductionEnvironment; p != "" && p != "true" && p != "false" {
		errs = append(errs, fmt.Errorf(`input "production-environment" is %q: use true, false, or leave it empty (production when the environment is named production or prod)`, p))
	}
	errs = append(errs, in.validateChart()...)
	if in.ReleaseHistory < 2 {
		errs = append(errs, fmt.Errorf(`input "release-history" is %d: keep at least 2 releases (the deployed one and the one to roll back to); the default is 10`, in.ReleaseHistory))
	}
	if in.Lock != "wait" && in.Lock != "fail" {
		errs = append(errs, fmt.Errorf(`input "lock" is %q: use wait (queue behind a running deploy) or fail`, in.Lock))
	}
	errs = append(errs, in.validateCommon()...)
	return errors.Join(errs...)
}

// validateCommon checks what every target shares: the verify-before-deploy
// policy and the environment's name.
func (in *Inputs) validateCommon() []error {
	var errs []error
	if len(in.VerifyRequire) > 0 && !in.verifies() {
		errs = append(errs, errors.New(`input "verify-require" needs a policy to verify against: set "verify-key", or "verify-certificate-identity" (or "-regexp") for keyless signatures`))
	}
	if in.VerifySourceRepository != "" {
		switch {
		case in.VerifyKey != "":
			errs = append(errs, errors.New(`input "verify-source-repository" needs a keyless policy: a key signature carries no repository (only a Fulcio certificate does); verify with "verify-certificate-identity" (or "-regexp") instead of "verify-key", or leave "verify-source-repository" empty`))
		case !in.verifies():
			errs = append(errs, errors.New(`input "verify-source-repository" needs "verify-certificate-identity" (or "-regexp"): it narrows a keyless identity and turns no verification on by itself`))
		default:
			if _, err := signing.SourceRepositoryURI(in.VerifySourceRepository); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if strings.ContainsAny(in.Environment, " /") || in.Environment == "" {
		errs = append(errs, fmt.Errorf(`input "environment" is %q: use a name such as staging or production`, in.Environment))
	}
	return errs
}

// Run is gantry-deploy. On a failed deploy it returns the outputs (status
// failure or rolled-back) together with the error.
func Run(ctx context.Context, in Inputs) (Outputs, error) {
	if err := in.Validate(); err != nil {
		return Outputs{}, err
	}
	if in.Log == nil {
		in.Log = ghaction.Discard{}
	}
	if in.Poll == 0 {
		in.Poll = time.Second
	}
	if in.LeaseDuration == 0 {
		in.LeaseDuration = 60 * time.Second
	}
	if in.Holder == "" {
		// The run URL tells a person where the other deploy is; host and
		// pid keep two jobs of one run apart.
		host, _ := os.Hostname()
		in.Holder = strings.TrimSpace(fmt.Sprintf("%s %s/%d", in.Git.RunURL, host, os.Getpid()))
	}
	if in.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, in.Timeout)
		defer cancel()
	}
	if in.Target == TargetArgoCD {
		return runGitOps(ctx, in)
	}
	cfg := in.RESTConfig
	if cfg == nil {
		var err error
		if cfg, err = RESTConfigFrom(in.Kubeconfig); err != nil {
			return Outputs{}, err
		}
	}
	c, err := newCluster(cfg)
	if err != nil {
		return Outputs{}, err
	}
	c.forceConflicts, c.warn = in.ForceConflicts, in.Log.Warningf
	d := &deployer{in: in, c: c, log: in.Log, started: time.Now()}
	progressive := in.Strategy == "blue-green" || in.Strategy == "canary"
	switch {
	case progressive && in.TrafficRouter == ArgoRollouts:
		return d.argo(ctx)
	case in.Action == "plan" && progressive:
		return d.planProgressive(ctx)
	case in.Action == "plan":
		return d.plan(ctx)
	case in.Action == "rollback":
		return d.rollback(ctx)
	case progressive:
		return d.progressive(ctx)
	}
	return d.deploy(ctx)
}

type deployer struct {
	in      Inputs
	c       *cluster
	log     ghaction.Logger
	started time.Time
	digest  name.Digest
	// tracked is this run's GitHub deployment tracker, once track ran.
	tracked *githubapi.Tracker
	// verified is the verify-before-deploy report, when a policy is set.
	verified *signing.Report
	// hookSuffix ends this run's hook Job names; hooks are the hook Jobs
	// it ran.
	hookSuffix string
	hooks      []hookRun
	// helm is the Helm chart rendered, when the source is a chart.
	helm *manifests.Rendered
}

// resolveImage turns the image input into a digest reference: a tag is
// resolved once, logged, and never used again.
func (d *deployer) resolveImage(ctx context.Context) error {
	ref, err := name.ParseReference(d.in.Image)
	if err != nil {
		return fmt.Errorf(`input "image": %q: %w`, d.in.Image, err)
	}
	if dg, ok := ref.(name.Digest); ok {
		d.digest = dg
		return nil
	}
	kc := d.in.Keychain
	if kc == nil {
		kc = authn.DefaultKeychain
	}
	desc, err := remote.Head(ref, remote.WithContext(ctx), remote.WithAuthFromKeychain(kc))
	if err != nil {
		return fmt.Errorf(`input "image": %s is a tag and resolving it failed (pass repo@sha256:… instead): %w`, d.in.Image, err)
	}
	d.digest = ref.Context().Digest(desc.Digest.String())
	d.log.Warningf("image %s is a tag: resolved once to %s; only the digest is deployed", d.in.Image, d.digest)
	return nil
}

// render renders the manifests or the chart with the image pinned and
// namespaces set.
func (d *deployer) render(ctx context.Context) ([]*unstructured.Unstructured, []manifests.Change, error) {
	var objs []*unstructured.Unstructured
	var err error
	if d.in.Chart != "" {
		objs, err = d.renderChart(ctx)
	} else {
		objs, err = manifests.Render(d.in.Manifests)
	}
	if err != nil {
		return nil, nil, err
	}
	var changes []manifests.Change
	if d.digest.String() != "" {
		if changes, err = manifests.PinImage(objs, d.digest.String()); err != nil {
			return nil, nil, err
		}
	}
	if err := manifests.SetNamespace(objs, d.in.Namespace, func(gvk schema.GroupVersionKind) (bool, error) {
		// A custom resource whose CRD comes in the same manifests: the
		// CRD says its scope (the cluster does not know it yet).
		if scope, ok := crdScope(objs, gvk); ok {
			return scope == "Namespaced", nil
		}
		return d.c.namespaced(gvk)
	}); err != nil {
		return nil, nil, err
	}
	return objs, changes, nil
}

// target is one workload being rolled out (a Deployment, StatefulSet or
// DaemonSet), with what ran before and what became of it.
type target struct {
	obj            *unstructured.Unstructured
	existed        bool
	before         *unstructured.Unstructured // live before the apply; nil when new
	changed        bool                       // the apply created it or changed its spec
	prevRevision   int64                      // Deployment: revision before the run
	previousDigest string
	ready          string   // pods ready after the rollout
	revision       int64    // Deployment: its revision now
	progress       string   // StatefulSet, DaemonSet: last progress logged
	deployProgress Progress // Deployment: last progress logged
	done           bool
	restored       *Revision // Deployment: the revision an automatic rollback restored
	forced         []string  // StatefulSet: pods deleted for a forced rollback
	outcome        string    // after a failed rollout: what happened to it
	rerun          bool      // Deployment: an earlier run applied this digest; prevRevision is the one before it
}

func (t *target) kind() string { return t.obj.GetKind() }

func (d *deployer) deploy(ctx context.Context) (Outputs, error) {
	out := Outputs{DeploymentURL: d.in.EnvironmentURL}
	if err := d.admit(ctx, &out, true, true); err != nil {
		return out, err
	}
	end := d.log.Group(fmt.Sprintf("Rendering %s with %s", d.in.source(), d.digest))
	objs, changes, err := d.render(ctx)
	end()
	if err != nil {
		return out, err
	}
	for _, ch := range changes {
		d.log.Infof("pinned %s", ch)
	}
	objs, hooks, err := splitHooks(objs)
	if err != nil {
		return out, err
	}
	ns, err := releaseNamespace(objs)
	if err != nil {
		return out, fmt.Errorf("%s %w", d.in.source(), err)
	}

	finish := d.track(ctx)

	// Namespaces first: the lease lives in the workloads' namespace.
	for _, o := range objs {
		if isNamespace(o) {
			if _, err := d.c.apply(ctx, o, false); err != nil {
				finish("error", err.Error())
				return out, err
			}
		}
	}
	if _, err := d.c.typed.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{}); apierrors.IsNotFound(err) {
		err = fmt.Errorf("namespace %s does not exist: create it, or add a Namespace object to the manifests", ns)
		finish("error", err.Error())
		return out, err
	}
	end = d.log.Group(fmt.Sprintf("Taking the deploy lease for %s in %s", d.in.Environment, ns))
	lk, err := d.lease(ctx, ns)
	end()
	if err != nil {
		finish("error", err.Error())
		return out, err
	}
	defer lk.release()
	checkpoint("lease-taken")
	// A blue-green or canary rollout left unfinished owns the traffic
	// split: a rolling update under it would be judged by nobody.
	if store, err := progressive.NewStore(d.c.typed, ns, d.in.Environment); err == nil {
		if st, err := store.Load(ctx); err == nil && st.Active() {
			err = fmt.Errorf("environment %s has an unfinished progressive rollout (Lease %s): %s; finish it first with strategy blue-green or canary and action resume, promote or abort", d.in.Environment, store.Lease(), st.Describe())
			finish("error", err.Error())
			return out, err
		}
	}
	history, err := d.c.releases(ctx, ns, d.in.Environment)
	if err != nil {
		finish("error", err.Error())
		return out, err
	}
	return d.release(ctx, out, finish, &releaseRun{ns: ns, objs: objs, hooks: hooks, history: history})
}

// source names what is deployed: the manifests, or the chart.
func (in *Inputs) source() string {
	if in.Chart != "" {
		return fmt.Sprintf("chart %s as release %s", in.Chart, in.releaseName())
	}
	return in.Manifests
}

// releaseNamespace is the namespace of a release's workloads: where its
// lease and its history live.
func releaseNamespace(objs []*unstructured.Unstructured) (string, error) {
	ws := manifests.RollingWorkloads(objs)
	if len(ws) == 0 {
		return "", errors.New("has no workload to roll out (strategy rolling rolls out Deployments, StatefulSets, DaemonSets and Argo Rollouts)")
	}
	return ws[0].GetNamespace(), nil
}

// releaseRun is one release being rolled out: a deploy of new manifests,
// or a rollback to a recorded release (to).
type releaseRun struct {
	ns      string
	objs    []*unstructured.Unstructured
	hooks   map[string][]*unstructured.Unstructured
	history []*Release
	// to is the release a rollback returns to; leavingHooks are the
	// on-rollback hooks of the release it leaves, run once the workloads
	// are back.
	to           *Release
	leavingHooks []*unstructured.Unstructured
	pruned       []string
	// recorded is this run's entry in the history, once written.
	recorded *Release
}

// release rolls out a release whose lease is held: every workload at once,
// waited for together, hooks at their points, the objects the deployed
// release had and this one has not pruned on success, and on failure
// every workload it changed returned as one. The outcome is recorded in
// the release history.
func (d *deployer) release(ctx context.Context, out Outputs, finish func(state, desc string), r *releaseRun) (Outputs, error) {
	objs, hooks := r.objs, r.hooks
	var targets []*target
	for _, o := range manifests.RollingWorkloads(objs) {
		targets = append(targets, &target{obj: o})
	}
	current := deployedRelease(r.history)
	var prune, keepNS []ObjectRef
	if d.in.Prune {
		prune, keepNS = pruneList(current, objs)
	}

	autoscalers, err := d.autoscalers(ctx, objs, r.ns)
	if err != nil {
		finish("error", err.Error())
		return out, err
	}
	for _, t := range targets {
		if err := d.snapshot(ctx, t); err != nil {
			finish("error", err.Error())
			return out, err
		}
		if err := d.keepAutoscaledReplicas(t, autoscalers); err != nil {
			finish("error", err.Error())
			return out, err
		}
		ann := t.obj.GetAnnotations()
		if ann == nil {
			ann = map[string]string{}
		}
		ann[AnnotationDigest] = d.digest.DigestStr()
		ann[AnnotationEnv] = d.in.Environment
		if r.to != nil {
			ann[AnnotationRollbackReason] = truncate(fmt.Sprintf("manual rollback (%s) to release %d", d.in.RollbackTo, r.to.Revision), 250)
		}
		if d.in.Git.SHA != "" && r.to == nil {
			ann[AnnotationRevision] = d.in.Git.CommitSHA()
		}
		if d.in.Git.RunURL != "" {
			ann[AnnotationRunURL] = d.in.Git.RunURL
		}
		t.obj.SetAnnotations(ann)
	}
	for _, t := range targets {
		if t.previousDigest != "" {
			out.PreviousDigest = t.previousDigest
			break
		}
	}
	rec := &Release{Environment: d.in.Environment, Action: "deploy", Image: d.digest.String(), Commit: d.in.Git.CommitSHA(), RunURL: d.in.Git.RunURL, Time: time.Now().UTC()}
	if r.to != nil {
		rec.Action, rec.Commit = "rollback", r.to.Commit
	}
	var allHooks []*unstructured.Unstructured
	for _, p := range hookPoints {
		allHooks = append(allHooks, hooks[p]...)
	}
	recordAs := func(status, desc string) {
		// Blue-green and canary keep their own record (the progressive
		// state); their first deploy, rolled directly, is not a release
		// a later rolling deploy or rollback should start from.
		if d.in.Strategy != "rolling" {
			return
		}
		rec.Status, rec.Description = status, truncate(desc, 500)
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if d.in.HelmRelease && d.helm != nil || r.to != nil && r.to.HelmRevision > 0 {
			hs := common.StatusFailed
			if status == ReleaseDeployed {
				hs = common.StatusDeployed
			}
			name, n, err := d.recordHelmRelease(r.ns, r, hs, desc)
			switch {
			case err != nil:
				d.log.Warningf("helm release: %v", err)
			case n > 0:
				rec.HelmName, rec.HelmRevision = name, n
				d.log.Infof("recorded helm release %s revision %d (%s)", name, n, hs)
			}
		}
		if err := d.c.record(rctx, r.ns, rec, objs, allHooks, r.history, d.in.ReleaseHistory); err != nil {
			d.log.Warningf("release history: %v", err)
			return
		}
		r.recorded = rec
		d.log.Infof("recorded release %d of %s (%s): ConfigMap %s/%s", rec.Revision, d.in.Environment, status, r.ns, rec.cm.Name)
	}

	if r.to == nil && len(hooks[HookPreDeploy]) > 0 {
		if err := d.applyHelmHookObjects(ctx, objs); err != nil {
			finish("error", err.Error())
			return out, err
		}
	}
	if r.to == nil {
		if err := d.runHooks(ctx, HookPreDeploy, hooks[HookPreDeploy]); err != nil {
			out.Status = StatusFailure
			err = fmt.Errorf("deploy of %s stopped before any workload changed: %w", d.digest, err)
			recordAs(ReleaseFailed, err.Error())
			out.Summary = d.summary(out, targets, r, err)
			finish("failure", err.Error())
			return out, err
		}
	}

	// CustomResourceDefinitions next, established before the custom
	// resources that need them are dry-run and applied.
	if err := d.applyCRDs(ctx, objs); err != nil {
		finish("error", err.Error())
		return out, err
	}

	// A server-side dry run of every object first: a conflict with another
	// field manager, or an object the API server refuses, stops the
	// deploy before anything of the release is written.
	if err := d.preflight(ctx, objs); err != nil {
		out.Status = StatusFailure
		err = fmt.Errorf("%s of %s stopped before any workload changed: %w", rec.Action, d.digest, err)
		finish("error", err.Error())
		return out, err
	}

	end := d.log.Group(fmt.Sprintf("Applying %d objects (server-side apply, field manager %s)", len(objs), FieldManager))
	for _, o := range objs {
		if isNamespace(o) || isCRD(o) {
			continue
		}
		if _, err := d.c.apply(ctx, o, false); err != nil {
			end()
			finish("error", err.Error())
			return out, err
		}
		d.log.Infof("applied %s %s", o.GetKind(), key(o))
	}
	end()
	for _, t := range targets {
		d.markChanged(ctx, t)
	}
	checkpoint("applied")

	end = d.log.Group(fmt.Sprintf("Waiting for the rollout of %d workload(s)", len(targets)))
	failed, failure := d.waitAll(ctx, targets)
	end()
	if failure == nil && r.to == nil {
		if err := d.runHooks(ctx, HookPostDeploy, hooks[HookPostDeploy]); err != nil {
			failed, failure = nil, err
		}
	}
	out.Revision = firstRevision(targets)
	if failure == nil {
		var perr error
		if len(prune)+len(keepNS) > 0 {
			end = d.log.Group(fmt.Sprintf("Pruning %d object(s) %s had and this release has not", len(prune), current))
			r.pruned, perr = d.prune(ctx, prune, keepNS)
			end()
		}
		if r.to != nil {
			hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), max(d.in.Timeout, time.Minute))
			if herr := d.runHooks(hctx, HookOnRollback, r.leavingHooks); herr != nil {
				perr = errors.Join(perr, herr)
			}
			cancel()
		}
		desc := "deployed " + d.digest.String()
		out.Status = StatusSuccess
		if r.to != nil {
			desc = fmt.Sprintf("rolled back to release %d (%s)", r.to.Revision, d.digest.DigestStr())
			out.Status = StatusRolledBack
			out.Digest = d.digest.DigestStr()
		}
		recordAs(ReleaseDeployed, desc)
		out.Summary = d.summary(out, targets, r, perr)
		if perr != nil {
			finish("failure", perr.Error())
			return out, fmt.Errorf("%s, but: %w", desc, perr)
		}
		finish("success", desc)
		return out, nil
	}

	f, _ := asFailure(failure)
	out.Failure = f
	out.Status = StatusFailure
	if failed != nil {
		failure = fmt.Errorf("%s %s: %w", failed.kind(), key(failed.obj), failure)
	}
	cause := failure
	what := "deploy of " + d.digest.String()
	if r.to != nil {
		what = fmt.Sprintf("rollback to release %d (%s)", r.to.Revision, d.digest)
	}
	existedBefore := slices.ContainsFunc(targets, func(t *target) bool { return t.existed })
	status := ReleaseFailed
	switch {
	case !d.in.AutoRollback:
		cause = fmt.Errorf("%s failed (auto-rollback is off: the workloads are left as they are): %w", what, failure)
	case !existedBefore:
		cause = fmt.Errorf("%s failed (first deploy of these workloads: nothing to roll back to; they are left for inspection): %w", what, failure)
	default:
		end = d.log.Group(fmt.Sprintf("Rolling the release back: %v", failure))
		rctx := context.WithoutCancel(ctx)
		err := d.rollbackAll(rctx, targets, "automatic rollback: "+failure.Error())
		end()
		if r.to == nil {
			hctx, cancel := context.WithTimeout(rctx, max(d.in.Timeout, time.Minute))
			if herr := d.runHooks(hctx, HookOnRollback, hooks[HookOnRollback]); herr != nil {
				err = errors.Join(err, herr)
			}
			cancel()
		}
		out.Revision = firstRevision(targets)
		if err != nil {
			cause = fmt.Errorf("%w; the automatic rollback failed: %v", failure, err)
		} else {
			status = ReleaseRolledBack
			out.Status = StatusRolledBack
			if r.to != nil {
				// The rollback itself failed and was undone.
				out.Status = StatusFailure
			}
			// What runs now is what ran before.
			out.Digest = out.PreviousDigest
			cause = fmt.Errorf("%s failed and the release was rolled back (%s): %w", what, rolledBackList(targets), failure)
		}
	}
	recordAs(status, cause.Error())
	out.Summary = d.summary(out, targets, r, failure)
	finish("failure", cause.Error())
	return out, cause
}

// firstRevision is the revision output: the first Deployment's revision
// now, "" when the release has no Deployment.
func firstRevision(targets []*target) string {
	for _, t := range targets {
		if t.kind() == KindDeployment && t.revision > 0 {
			return fmt.Sprint(t.revision)
		}
	}
	return ""
}

// rolledBackList says in one line what the rollback did to each workload
// it touched.
func rolledBackList(targets []*target) string {
	var parts []string
	for _, t := range targets {
		if t.changed {
			parts = append(parts, fmt.Sprintf("%s %s %s", t.kind(), key(t.obj), t.outcome))
		}
	}
	return strings.Join(parts, "; ")
}

// production says whether the GitHub Deployment is a production one:
// the input, else the environment's name (production or prod, any case;
// not preprod, non-prod or production-eu).
func (in *Inputs) production() bool {
	if in.ProductionEnvironment != "" {
		return in.ProductionEnvironment == "true"
	}
	name := strings.ToLower(strings.TrimSpace(in.Environment))
	return name == "production" || name == "prod"
}

// lease takes the environment's Lease in ns, noting this run's GitHub
// deployment on it. When it took the Lease over from a run that died
// (its holder stopped renewing it), that run's GitHub deployment, still
// "in progress" on the environment's page, is closed as an error that
// says which run took over.
func (d *deployer) lease(ctx context.Context, ns string) (*lock, error) {
	note := ""
	if dep, ok := d.tracked.Deployment(); ok {
		note = fmt.Sprintf("%s/%s/%d", dep.Owner, dep.Repo, dep.ID)
	}
	lk, err := d.c.acquire(ctx, d.log, ns, d.in.Environment, d.in.Holder, note, d.in.LeaseDuration, d.in.Lock == "wait")
	if err != nil || lk.abandoned == "" {
		return lk, err
	}
	owner, rest, _ := strings.Cut(lk.abandoned, "/")
	repo, idText, _ := strings.Cut(rest, "/")
	id, perr := strconv.ParseInt(idText, 10, 64)
	client := d.tracked.Client()
	switch {
	case perr != nil || owner == "" || repo == "":
		d.log.Warningf("Lease %s/%s: annotation %s=%q is not owner/repo/id: the GitHub deployment of the run that died is left as it is", ns, lk.name, AnnotationGitHubDeployment, lk.abandoned)
	case client == nil:
		d.log.Warningf("the run that died (%s) left GitHub deployment %d of %s/%s in progress; this run has no GitHub token to close it", lk.abandonedBy, id, owner, repo)
	default:
		by := d.in.Git.RunURL
		if by == "" {
			by = d.in.Holder
		}
		s := githubapi.Status{State: githubapi.StateError, Description: "its run stopped holding the deploy lease (runner lost?); taken over by " + by}
		if err := client.SetStatus(ctx, githubapi.Deployment{Owner: owner, Repo: repo, ID: id}, s); err != nil {
			d.log.Warningf("closing GitHub deployment %d of the run that died: %v", id, err)
		} else {
			d.log.Infof("GitHub deployment %d of the run that died (%s) closed as error", id, lk.abandonedBy)
		}
	}
	return lk, nil
}

// rerun settles what a deploy rolls back to when the Deployment already
// runs the digest it deploys: an earlier run applied it (a re-run of a
// job whose runner died after the apply, or a deploy of the same image
// again). The revision before, which ran another digest, is the one to
// return to; the current one would be the version under test itself.
func (d *deployer) rerun(ctx context.Context, t *target, live *appsv1.Deployment) {
	revs, err := d.c.history(ctx, live, d.digest.Context().String())
	if err != nil {
		d.log.Warningf("%s already runs %s, and its revisions could not be read (%v): an automatic rollback has nothing to return to", key(t.obj), d.digest.DigestStr(), err)
		return
	}
	for _, r := range revs { // newest first
		if r.Number < t.prevRevision && r.Digest != "" && r.Digest != d.digest.DigestStr() {
			d.log.Infof("%s already runs %s (revision %d, applied by an earlier run): an automatic rollback returns to %s", key(t.obj), d.digest.DigestStr(), t.prevRevision, r)
			t.prevRevision, t.previousDigest = r.Number, r.Digest
			t.rerun = true
			return
		}
	}
	d.log.Infof("%s already runs %s (revision %d) and keeps no earlier revision of another digest: nothing to roll back to", key(t.obj), d.digest.DigestStr(), t.prevRevision)
	t.prevRevision = 0
}

// restore rolls a Deployment back to a revision and waits for it.
func (d *deployer) restore(ctx context.Context, ns, name string, to RollbackTarget, reason string) (Revision, error) {
	ctx, cancel := context.WithTimeout(ctx, max(d.in.Timeout, time.Minute))
	defer cancel()
	dep, err := d.c.typed.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return Revision{}, fmt.Errorf("reading deployment %s/%s: %w", ns, name, err)
	}
	repo := ""
	if d.digest.String() != "" {
		repo = d.digest.Context().String()
	}
	revs, err := d.c.history(ctx, dep, repo)
	if err != nil {
		return Revision{}, err
	}
	r, err := pick(revs, to)
	if err != nil {
		return Revision{}, err
	}
	if r.Current {
		d.log.Infof("%s/%s already runs %s", ns, name, r)
		return r, nil
	}
	ann := map[string]string{AnnotationRollbackReason: truncate(reason, 250)}
	if r.Digest != "" {
		ann[AnnotationDigest] = r.Digest
	}
	if _, err := d.c.undo(ctx, dep, r, ann); err != nil {
		return r, err
	}
	d.log.Infof("%s/%s: restoring %s", ns, name, r)
	after, err := d.c.waitRollout(ctx, d.log, ns, name, d.in.Poll)
	if err != nil {
		return r, fmt.Errorf("waiting for the rollback to %s: %w", r, err)
	}
	r.Number = revisionOf(after) // the controller renumbers the restored revision
	return r, nil
}

// rollback is action rollback. With "deployment", that Deployment alone
// returns to one of its own revisions. Otherwise the whole release returns
// to a recorded one: its objects as they were applied, every workload
// rolled out and waited for together, what the release left has and the
// target has not pruned, and the left release's on-rollback hooks run
// once the workloads are back (its down migration).
func (d *deployer) rollback(ctx context.Context) (Outputs, error) {
	out := Outputs{DeploymentURL: d.in.EnvironmentURL}
	to, _ := ParseRollbackTarget(d.in.RollbackTo)
	ns, depName := d.in.Namespace, d.in.Deployment
	var objs []*unstructured.Unstructured
	if d.in.Manifests != "" || d.in.Chart != "" {
		var err error
		if objs, _, err = d.render(ctx); err != nil {
			return out, err
		}
		if ns == "" {
			if ns, err = releaseNamespace(objs); err != nil {
				return out, fmt.Errorf("%s %w", d.in.source(), err)
			}
		}
	}
	if ns == "" {
		ns = "default"
	}
	lk, err := d.lease(ctx, ns)
	if err != nil {
		return out, err
	}
	defer lk.release()
	if depName == "" && d.in.Strategy == "rolling" {
		history, err := d.c.releases(ctx, ns, d.in.Environment)
		if err != nil {
			return out, err
		}
		if len(history) > 0 {
			return d.rollbackRelease(ctx, out, ns, history, to)
		}
	}
	if depName == "" {
		w := manifests.Workloads(objs)
		if len(w) == 0 {
			return out, fmt.Errorf(`action rollback: environment %s has no release history in namespace %s (no ConfigMap labelled %s=%s): roll back one Deployment with "deployment" and "namespace", or give the "manifests" to find it`, d.in.Environment, ns, LabelReleaseOf, d.in.Environment)
		}
		depName = w[0].GetName()
		if d.in.Strategy == "rolling" {
			d.log.Warningf("environment %s has no release history in %s (deployed before gantry recorded releases): rolling back Deployment %s/%s alone, by its own revisions", d.in.Environment, ns, ns, depName)
		}
	}
	before, err := d.c.typed.AppsV1().Deployments(ns).Get(ctx, depName, metav1.GetOptions{})
	if err != nil {
		return out, fmt.Errorf("reading deployment %s/%s: %w", ns, depName, err)
	}
	out.PreviousDigest = digestOf(before.Spec.Template, "")
	finish := d.track(ctx)
	r, err := d.restore(ctx, ns, depName, to, "manual rollback ("+d.in.RollbackTo+")")
	if err != nil {
		finish("failure", err.Error())
		return out, err
	}
	out.Status, out.Revision, out.Digest = StatusRolledBack, fmt.Sprint(r.Number), r.Digest
	out.Summary = d.rollbackSummary(ns, depName, out, r)
	finish("success", "rolled back to "+r.String())
	return out, nil
}

// rollbackRelease returns the environment to a recorded release.
func (d *deployer) rollbackRelease(ctx context.Context, out Outputs, ns string, history []*Release, to RollbackTarget) (Outputs, error) {
	target, err := pickRelease(history, to)
	if err != nil {
		return out, err
	}
	cur := deployedRelease(history)
	if d.digest, err = name.NewDigest(target.Image); err != nil {
		return out, fmt.Errorf("%s: its image %q is not a digest reference: %w", target, target.Image, err)
	}
	if target == cur {
		d.log.Infof("environment %s already runs %s: nothing to roll back", d.in.Environment, target)
		out.Status, out.Digest = StatusSuccess, d.digest.DigestStr()
		return out, nil
	}
	objs, err := target.releaseObjects()
	if err != nil {
		return out, fmt.Errorf(`input "rollback-to": %w`, err)
	}
	objs, hooks, err := splitHooks(objs)
	if err != nil {
		return out, err
	}
	run := &releaseRun{ns: ns, objs: objs, hooks: hooks, history: history, to: target}
	if cur != nil {
		if left, err := cur.releaseObjects(); err != nil {
			d.log.Warningf("the on-rollback hooks of %s are not run: %v", cur, err)
		} else if _, lh, err := splitHooks(left); err == nil {
			run.leavingHooks = lh[HookOnRollback]
		}
	}
	d.log.Infof("rolling environment %s back to %s: %d objects, image %s (requested: %s)", d.in.Environment, target, len(objs), d.digest, d.in.RollbackTo)
	finish := d.track(ctx)
	return d.release(ctx, out, finish, run)
}

// track starts the run's GitHub Deployment and returns the function that
// finishes it. Reporting outlives a cancelled deploy context (30 s).
func (d *deployer) track(ctx context.Context) (finish func(state, desc string)) {
	tracker := d.tracker()
	tracker.Start(ctx)
	d.tracked = tracker
	return func(state, desc string) {
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		tracker.Finish(fctx, state, desc)
	}
}

func (d *deployer) tracker() *githubapi.Tracker {
	req := githubapi.Request{
		Ref:                   d.in.Git.CommitSHA(),
		Environment:           d.in.Environment,
		Description:           "gantry: " + d.in.Action + " " + d.digest.String(),
		Payload:               map[string]any{"image": d.digest.String(), "action": d.in.Action},
		ProductionEnvironment: d.in.production(),
	}
	var client *githubapi.Client
	if d.in.GitHubToken != "" && d.in.Git.Repository != "" && req.Ref != "" {
		owner, repo, err := githubapi.ParseRepository(d.in.Git.Repository)
		if err == nil {
			req.Owner, req.Repo = owner, repo
			client, err = githubapi.New(d.in.GitHubToken, d.in.GitHubAPIURL, nil)
		}
		if err != nil {
			d.log.Warningf("GitHub Deployments disabled: %v", err)
			client = nil
		}
	}
	return githubapi.NewTracker(client, req, d.in.Git.RunURL, d.in.EnvironmentURL, d.log.Warningf)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-1] + "…"
}
