package rollout

import (
	"context"
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"
	"time"

	"helm.sh/helm/v4/pkg/release/common"
	helmrelease "helm.sh/helm/v4/pkg/release/v1"
	"helm.sh/helm/v4/pkg/storage"
	"helm.sh/helm/v4/pkg/storage/driver"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/discovery"

	"github.com/gantry-ci/gantry/internal/manifests"
)

// imageValueParts are what an image-values line can set a chart value to.
var imageValueParts = []string{"ref", "repository", "digest"}

// validateChart checks the chart inputs that need no cluster.
func (in *Inputs) validateChart() []error {
	var errs []error
	if in.Chart == "" {
		if in.HelmRelease {
			errs = append(errs, errors.New(`input "helm-release" records a Helm chart's deploys: set "chart" too, or leave "helm-release" false`))
		}
		for name, v := range map[string]bool{"chart-version": in.ChartVersion != "", "chart-repository": in.ChartRepository != "", "values": len(in.Values) > 0, "set": len(in.Set) > 0, "image-values": len(in.ImageValues) > 0, "release-name": in.ReleaseName != ""} {
			if v {
				errs = append(errs, fmt.Errorf(`input %q is for a Helm chart: set "chart" too, or leave %q empty`, name, name))
			}
		}
		return errs
	}
	if in.Manifests != "" {
		errs = append(errs, errors.New(`inputs "chart" and "manifests" are both set: deploy either a Helm chart or manifests`))
	}
	if in.Namespace == "" {
		errs = append(errs, errors.New(`input "chart" needs "namespace": the release's namespace (helm's --namespace), where objects naming none go`))
	}
	if in.ChartRepository != "" && in.ChartVersion == "" {
		errs = append(errs, errors.New(`input "chart-repository" needs "chart-version": the exact version of the chart to deploy`))
	}
	for _, l := range in.ImageValues {
		k, part, ok := strings.Cut(strings.TrimSpace(l), "=")
		if !ok || k == "" || !slices.Contains(imageValueParts, part) {
			errs = append(errs, fmt.Errorf(`input "image-values": line %q: write <values path>=<part>, part one of %s (e.g. image.repository=repository and image.digest=digest)`, l, strings.Join(imageValueParts, ", ")))
		}
	}
	return errs
}

// releaseName is the Helm release name: the input, else the chart's name
// as the reference gives it (last path element, without version, digest
// or .tgz).
func (in *Inputs) releaseName() string {
	if in.ReleaseName != "" {
		return in.ReleaseName
	}
	n := path.Base(strings.TrimRight(in.Chart, "/"))
	n, _, _ = strings.Cut(n, "@")
	n, _, _ = strings.Cut(n, ":")
	n = strings.TrimSuffix(strings.TrimSuffix(n, ".tgz"), ".tar.gz")
	if i := strings.LastIndex(n, "-"); i > 0 && strings.HasSuffix(in.Chart, ".tgz") && n[i+1] >= '0' && n[i+1] <= '9' {
		n = n[:i] // app-1.2.3.tgz
	}
	return n
}

// imageSets turns image-values lines into --set lines with the deployed
// image's parts.
func (d *deployer) imageSets() []string {
	var sets []string
	for _, l := range d.in.ImageValues {
		k, part, _ := strings.Cut(strings.TrimSpace(l), "=")
		v := map[string]string{
			"ref":        d.digest.String(),
			"repository": d.digest.Context().String(),
			"digest":     d.digest.DigestStr(),
		}[part]
		sets = append(sets, k+"="+v)
	}
	return sets
}

// renderChart renders the chart input with the cluster's capabilities
// (its version and every API it serves), as helm install would against
// it. An environment with a deployed release is an upgrade (the chart's
// pre-upgrade hooks run), else an install.
func (d *deployer) renderChart(ctx context.Context) ([]*unstructured.Unstructured, error) {
	kube, apis, err := d.c.capabilities()
	if err != nil {
		return nil, fmt.Errorf(`input "chart": reading the cluster's capabilities for rendering: %w`, err)
	}
	upgrade := false
	if history, err := d.c.releases(ctx, d.in.Namespace, d.in.Environment); err == nil {
		upgrade = deployedRelease(history) != nil
	} else {
		d.log.Warningf("rendering the chart as an install: %v", err)
	}
	r, err := manifests.RenderChart(ctx, manifests.Chart{
		Ref: d.in.Chart, RepoURL: d.in.ChartRepository, Version: d.in.ChartVersion,
		Values: d.in.Values, Set: append(append([]string{}, d.in.Set...), d.imageSets()...),
		Release: d.in.releaseName(), Namespace: d.in.Namespace,
		KubeVersion: kube, APIVersions: apis, IsUpgrade: upgrade,
		PlainHTTP: d.in.ChartPlainHTTP, Username: d.in.ChartUsername, Password: d.in.ChartPassword,
	})
	if err != nil {
		return nil, err
	}
	what := "install"
	if upgrade {
		what = "upgrade"
	}
	d.helm = r
	d.log.Infof("rendered chart %s as release %s in %s (%s, Kubernetes %s): %d objects, %d hook Job(s)", d.chartName(), d.in.releaseName(), d.in.Namespace, what, kube, len(r.Objects), len(r.Hooks))
	for _, n := range r.Notes {
		d.log.Warningf("chart %s: %s", r.Chart, n)
	}
	return append(r.Objects, r.Hooks...), nil
}

// capabilities is the cluster's version and the APIs it serves, as
// helm's .Capabilities has them: "group/version" and
// "group/version/Kind".
func (c *cluster) capabilities() (string, []string, error) {
	dc := c.typed.Discovery()
	v, err := dc.ServerVersion()
	if err != nil {
		return "", nil, err
	}
	_, lists, err := dc.ServerGroupsAndResources()
	if err != nil && !discovery.IsGroupDiscoveryFailedError(err) {
		return "", nil, err
	}
	var apis []string
	for _, l := range lists {
		apis = append(apis, l.GroupVersion)
		for _, r := range l.APIResources {
			if !strings.Contains(r.Name, "/") {
				apis = append(apis, l.GroupVersion+"/"+r.Kind)
			}
		}
	}
	return v.GitVersion, apis, nil
}

// applyHelmHookObjects applies the objects a chart made hooks of that are
// not Jobs (a ConfigMap or Secret a migration Job reads) before the
// pre-deploy hooks run, as helm creates them before its Job hooks.
func (d *deployer) applyHelmHookObjects(ctx context.Context, objs []*unstructured.Unstructured) error {
	for _, o := range objs {
		if _, ok := o.GetAnnotations()[manifests.AnnotationHelmHook]; !ok {
			continue
		}
		if _, err := d.c.apply(ctx, o, false); err != nil {
			return err
		}
		d.log.Infof("applied %s %s (a helm hook object, before the pre-deploy hooks)", o.GetKind(), key(o))
	}
	return nil
}

// recordHelmRelease writes the deploy as a Helm release (helm's Secret
// storage, as helm install/upgrade would), so helm list, helm history and
// helm rollback see it: input helm-release. A deployed release supersedes
// the one deployed before. A rollback of the whole release to one that
// had a Helm release copies that one as a new revision ("Rollback to N"),
// as helm rollback does (whatever the input says: Helm's record must not
// say a release runs that no longer does). Returns the Helm release name
// and revision written.
func (d *deployer) recordHelmRelease(ns string, r *releaseRun, status common.Status, desc string) (string, int, error) {
	name := d.in.releaseName()
	if r.to != nil {
		name = r.to.HelmName
	}
	st := storage.Init(driver.NewSecrets(d.c.typed.CoreV1().Secrets(ns)))
	var rel *helmrelease.Release
	switch {
	case r.to != nil && r.to.HelmRevision > 0:
		prev, err := st.Get(name, r.to.HelmRevision)
		if err != nil {
			return "", 0, fmt.Errorf("helm release %s revision %d (release %d's): %w", name, r.to.HelmRevision, r.to.Revision, err)
		}
		p, ok := prev.(*helmrelease.Release)
		if !ok {
			return "", 0, fmt.Errorf("helm release %s revision %d: not a helm v3/v4 release record", name, r.to.HelmRevision)
		}
		rel = &helmrelease.Release{Name: name, Namespace: ns, Chart: p.Chart, Config: p.Config, Manifest: p.Manifest, Hooks: p.Hooks, ApplyMethod: string(helmrelease.ApplyMethodServerSideApply)}
		desc = fmt.Sprintf("Rollback to %d (gantry: %s)", r.to.HelmRevision, desc)
	case d.helm != nil:
		rel = &helmrelease.Release{Name: name, Namespace: ns, Chart: d.helm.Loaded, Config: d.helm.Config, Manifest: d.helm.Manifest, ApplyMethod: string(helmrelease.ApplyMethodServerSideApply)}
	default:
		return "", 0, nil
	}
	now := time.Now()
	rel.Version, rel.Info = 1, &helmrelease.Info{FirstDeployed: now, LastDeployed: now, Status: status, Description: truncate(desc, 500)}
	if last, err := st.Last(name); err == nil {
		if l, ok := last.(*helmrelease.Release); ok {
			rel.Version = l.Version + 1
			if l.Info != nil {
				rel.Info.FirstDeployed = l.Info.FirstDeployed
			}
		}
	} else if !errors.Is(err, driver.ErrReleaseNotFound) {
		return "", 0, fmt.Errorf("reading helm release %s: %w", name, err)
	}
	if status == common.StatusDeployed {
		if deployed, err := st.DeployedAll(name); err == nil {
			for _, dr := range deployed {
				if old, ok := dr.(*helmrelease.Release); ok {
					old.Info.Status = common.StatusSuperseded
					if err := st.Update(old); err != nil {
						return "", 0, fmt.Errorf("marking helm release %s revision %d superseded: %w", name, old.Version, err)
					}
				}
			}
		}
	}
	if err := st.Create(rel); err != nil {
		return "", 0, fmt.Errorf("writing helm release %s revision %d: %w", name, rel.Version, err)
	}
	return name, rel.Version, nil
}

// chartName is the chart rendered, "name-version", with the OCI digest
// pulled; "" when the source is not a chart.
func (d *deployer) chartName() string {
	if d.helm == nil {
		return ""
	}
	if d.helm.Digest != "" {
		return d.helm.Chart + " (" + d.helm.Digest + ")"
	}
	return d.helm.Chart
}
