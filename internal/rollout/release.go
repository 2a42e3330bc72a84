package rollout

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/rest"
)

// The release history. Every rolling deploy and every release rollback of
// an environment is recorded, like helm's release Secrets, as a ConfigMap
// gantry-release-<environment>.v<N> in the workloads' namespace: the image,
// the commit and run, the inventory of the objects applied, and those
// objects as applied (gzip). The inventory is what the next deploy prunes
// against; the objects are what a rollback of the whole release applies.

// Labels on the release ConfigMaps.
const (
	LabelReleaseOf       = "gantry.dev/release-of" // the environment
	LabelReleaseRevision = "gantry.dev/release-revision"
	LabelReleaseStatus   = "gantry.dev/release-status"
)

// Release statuses, as `helm history` has them.
const (
	// ReleaseDeployed: what the environment runs now (one at a time).
	ReleaseDeployed = "deployed"
	// ReleaseSuperseded: deployed once, replaced by a later release.
	ReleaseSuperseded = "superseded"
	// ReleaseFailed: its rollout failed and was left as it was.
	ReleaseFailed = "failed"
	// ReleaseRolledBack: its rollout failed and was rolled back.
	ReleaseRolledBack = "rolled-back"
)

const (
	releaseJSON     = "release.json"
	releaseManifest = "objects.json.gz"
	// A ConfigMap holds at most 1 MiB; past this the objects are not kept
	// (the release is listed, and cannot be rolled back to).
	maxManifest = 900 << 10
)

// Release is one entry of an environment's release history.
type Release struct {
	Revision    int         `json:"revision"`
	Environment string      `json:"environment"`
	Status      string      `json:"status"`
	Action      string      `json:"action"` // deploy, rollback
	Description string      `json:"description"`
	Image       string      `json:"image"` // repo@sha256:…
	Commit      string      `json:"commit,omitempty"`
	RunURL      string      `json:"runURL,omitempty"`
	Time        time.Time   `json:"time"`
	Objects     []ObjectRef `json:"objects"`
	// Hooks are the hook Jobs of the release as written in the manifests
	// (their on-rollback ones run when a release rollback leaves it).
	Hooks []ObjectRef `json:"hooks,omitempty"`
	// HelmRevision is the Helm release revision written for it (input
	// helm-release), 0 when none.
	HelmRevision int    `json:"helmRevision,omitempty"`
	HelmName     string `json:"helmName,omitempty"`

	cm      *corev1.ConfigMap
	objects []byte // gzip JSON of the objects as applied, hooks included
}

// ObjectRef names one object of a release's inventory.
type ObjectRef struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Namespace  string `json:"namespace,omitempty"`
	Name       string `json:"name"`
}

func refOf(o *unstructured.Unstructured) ObjectRef {
	return ObjectRef{APIVersion: o.GetAPIVersion(), Kind: o.GetKind(), Namespace: o.GetNamespace(), Name: o.GetName()}
}

// same compares by group, not version: a manifest moving from
// autoscaling/v1 to v2 names the same object.
func (r ObjectRef) same(o ObjectRef) bool {
	g1, _ := schema.ParseGroupVersion(r.APIVersion)
	g2, _ := schema.ParseGroupVersion(o.APIVersion)
	return g1.Group == g2.Group && r.Kind == o.Kind && r.Namespace == o.Namespace && r.Name == o.Name
}

func (r ObjectRef) String() string {
	if r.Namespace == "" {
		return r.Kind + " " + r.Name
	}
	return r.Kind + " " + r.Namespace + "/" + r.Name
}

func (r ObjectRef) object() *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	u.SetAPIVersion(r.APIVersion)
	u.SetKind(r.Kind)
	u.SetNamespace(r.Namespace)
	u.SetName(r.Name)
	return u
}

func (r *Release) String() string {
	s := fmt.Sprintf("release %d (%s", r.Revision, r.Status)
	if _, dg, ok := strings.Cut(r.Image, "@"); ok {
		s += ", " + dg
	}
	return s + ")"
}

// releaseName is the ConfigMap of an environment's release n.
func releaseName(environment string, n int) string {
	return fmt.Sprintf("gantry-release-%s.v%d", strings.ToLower(environment), n)
}

// releases reads an environment's history in ns, newest first.
func (c *cluster) releases(ctx context.Context, ns, environment string) ([]*Release, error) {
	list, err := c.typed.CoreV1().ConfigMaps(ns).List(ctx, metav1.ListOptions{LabelSelector: LabelReleaseOf + "=" + environment})
	if err != nil {
		return nil, fmt.Errorf("reading the release history of %s (ConfigMaps labelled %s=%s in %s): %w", environment, LabelReleaseOf, environment, ns, err)
	}
	var out []*Release
	for i := range list.Items {
		cm := &list.Items[i]
		r := &Release{}
		if err := json.Unmarshal([]byte(cm.Data[releaseJSON]), r); err != nil {
			return nil, fmt.Errorf("release history of %s: ConfigMap %s/%s: %s is not a release record (%v): delete that ConfigMap", environment, ns, cm.Name, releaseJSON, err)
		}
		r.cm, r.objects = cm, cm.BinaryData[releaseManifest]
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b *Release) int { return b.Revision - a.Revision })
	return out, nil
}

// History reads an environment's release history in namespace ns, newest
// first.
func History(ctx context.Context, cfg *rest.Config, ns, environment string) ([]*Release, error) {
	c, err := newCluster(cfg)
	if err != nil {
		return nil, err
	}
	return c.releases(ctx, ns, environment)
}

// deployedRelease is the release the environment runs now, nil when none.
func deployedRelease(history []*Release) *Release {
	for _, r := range history {
		if r.Status == ReleaseDeployed {
			return r
		}
	}
	return nil
}

// releaseObjects are the objects a release applied, hooks included, as
// they were applied.
func (r *Release) releaseObjects() ([]*unstructured.Unstructured, error) {
	if len(r.objects) == 0 {
		return nil, fmt.Errorf("%s has no objects recorded (its manifests were over %d KiB): roll it back by deploying its image with its manifests", r, maxManifest>>10)
	}
	zr, err := gzip.NewReader(bytes.NewReader(r.objects))
	if err != nil {
		return nil, fmt.Errorf("%s: reading its objects: %w", r, err)
	}
	b, err := io.ReadAll(zr)
	if err != nil {
		return nil, fmt.Errorf("%s: reading its objects: %w", r, err)
	}
	var raw []map[string]any
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, fmt.Errorf("%s: reading its objects: %w", r, err)
	}
	objs := make([]*unstructured.Unstructured, len(raw))
	for i, m := range raw {
		objs[i] = &unstructured.Unstructured{Object: m}
	}
	return objs, nil
}

// record writes release r (its Revision one past the newest in history)
// with its objects and hooks. A deployed release supersedes the one
// deployed before. The oldest records past keep are deleted, never the
// deployed one.
func (c *cluster) record(ctx context.Context, ns string, r *Release, objs, hooks []*unstructured.Unstructured, history []*Release, keep int) error {
	r.Revision = 1
	if len(history) > 0 {
		r.Revision = history[0].Revision + 1
	}
	for _, o := range objs {
		r.Objects = append(r.Objects, refOf(o))
	}
	for _, h := range hooks {
		r.Hooks = append(r.Hooks, refOf(h))
	}
	all := make([]map[string]any, 0, len(objs)+len(hooks))
	for _, o := range append(slices.Clone(objs), hooks...) {
		all = append(all, o.Object)
	}
	raw, err := json.Marshal(all)
	if err != nil {
		return err
	}
	var z bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&z, gzip.BestCompression)
	zw.Write(raw)
	zw.Close()
	meta, err := json.Marshal(r)
	if err != nil {
		return err
	}
	cm := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: releaseName(r.Environment, r.Revision), Namespace: ns, Labels: map[string]string{
			LabelReleaseOf: r.Environment, LabelReleaseRevision: strconv.Itoa(r.Revision), LabelReleaseStatus: r.Status,
			"app.kubernetes.io/managed-by": "gantry",
		}},
		Data: map[string]string{releaseJSON: string(meta)},
	}
	if z.Len() <= maxManifest {
		cm.BinaryData = map[string][]byte{releaseManifest: z.Bytes()}
	} else if c.warn != nil {
		c.warn("release %d of %s: its objects are %d KiB compressed, over what a ConfigMap holds: recorded without them (it cannot be rolled back to as a release)", r.Revision, r.Environment, z.Len()>>10)
	}
	if _, err := c.typed.CoreV1().ConfigMaps(ns).Create(ctx, cm, metav1.CreateOptions{FieldManager: FieldManager}); err != nil {
		return fmt.Errorf("recording release %d of %s (ConfigMap %s/%s): %w", r.Revision, r.Environment, ns, cm.Name, err)
	}
	r.cm = cm
	var errs []error
	if r.Status == ReleaseDeployed {
		for _, old := range history {
			if old.Status == ReleaseDeployed {
				errs = append(errs, c.setReleaseStatus(ctx, old, ReleaseSuperseded))
			}
		}
	}
	kept := 1
	for _, old := range history {
		if kept < keep || old.Status == ReleaseDeployed {
			kept++
			continue
		}
		err := c.typed.CoreV1().ConfigMaps(ns).Delete(ctx, old.cm.Name, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("deleting release record %s past release-history: %w", old.cm.Name, err))
		}
	}
	return errors.Join(errs...)
}

func (c *cluster) setReleaseStatus(ctx context.Context, r *Release, status string) error {
	r.Status = status
	meta, err := json.Marshal(r)
	if err != nil {
		return err
	}
	cm := r.cm.DeepCopy()
	cm.Labels[LabelReleaseStatus] = status
	cm.Data[releaseJSON] = string(meta)
	if _, err := c.typed.CoreV1().ConfigMaps(cm.Namespace).Update(ctx, cm, metav1.UpdateOptions{FieldManager: FieldManager}); err != nil {
		return fmt.Errorf("marking release %d of %s %s: %w", r.Revision, r.Environment, status, err)
	}
	return nil
}

// pickRelease finds the release a rollback returns to: previous (the
// newest release deployed before the current one), revision:N (release
// N), or digest:… (the newest release of that digest). Failed releases
// are never a target.
func pickRelease(history []*Release, to RollbackTarget) (*Release, error) {
	cur := deployedRelease(history)
	good := func(r *Release) bool { return r.Status == ReleaseDeployed || r.Status == ReleaseSuperseded }
	switch to.Kind {
	case "revision":
		for _, r := range history {
			if strconv.Itoa(r.Revision) == to.Value {
				if !good(r) {
					return nil, fmt.Errorf(`input "rollback-to": %s never ran to the end: pick a release that was deployed (%s)`, r, listReleases(history))
				}
				return r, nil
			}
		}
		return nil, fmt.Errorf(`input "rollback-to": no release %s in the history (%s)`, to.Value, listReleases(history))
	case "digest":
		for _, r := range history {
			if _, dg, _ := strings.Cut(r.Image, "@"); good(r) && dg == to.Value {
				return r, nil
			}
		}
		return nil, fmt.Errorf(`input "rollback-to": no deployed release of %s in the history (%s)`, to.Value, listReleases(history))
	}
	for _, r := range history {
		if good(r) && (cur == nil || r.Revision < cur.Revision) && r != cur {
			return r, nil
		}
	}
	return nil, fmt.Errorf(`input "rollback-to" previous: no release before the current one in the history (%s)`, listReleases(history))
}

func listReleases(history []*Release) string {
	if len(history) == 0 {
		return "the history is empty"
	}
	var parts []string
	for _, r := range history {
		parts = append(parts, r.String())
	}
	return "history: " + strings.Join(parts, ", ")
}

// pruneList is what the deploy of objs removes: objects of the deployed
// release this one no longer has. Namespaces and CRDs are never pruned
// (deleting one deletes everything in it): they are returned as kept.
func pruneList(prev *Release, objs []*unstructured.Unstructured) (prune, kept []ObjectRef) {
	if prev == nil {
		return nil, nil
	}
	for _, r := range prev.Objects {
		if slices.ContainsFunc(objs, func(o *unstructured.Unstructured) bool { return r.same(refOf(o)) }) {
			continue
		}
		if r.Kind == "Namespace" || r.Kind == "CustomResourceDefinition" {
			kept = append(kept, r)
			continue
		}
		prune = append(prune, r)
	}
	return prune, kept
}

// appliedByGantry says whether Gantry's server-side apply still owns
// fields of the live object: one another tool took over entirely (or
// recreated) is not Gantry's to delete.
func appliedByGantry(live *unstructured.Unstructured) bool {
	for _, mf := range live.GetManagedFields() {
		if mf.Manager == FieldManager && mf.Operation == metav1.ManagedFieldsOperationApply {
			return true
		}
	}
	return false
}

// prune deletes the objects of refs that still exist and Gantry still
// applies, and says what became of each.
func (d *deployer) prune(ctx context.Context, refs, kept []ObjectRef) (lines []string, err error) {
	for _, r := range kept {
		d.log.Warningf("%s is no longer in the manifests: not pruned (a %s is never deleted by a deploy; delete it yourself when it is no longer needed)", r, r.Kind)
		lines = append(lines, fmt.Sprintf("%s: kept (%ss are not pruned)", r, r.Kind))
	}
	var errs []error
	for _, r := range refs {
		o := r.object()
		res, rerr := d.c.resource(o)
		if rerr != nil {
			lines = append(lines, fmt.Sprintf("%s: kept (%v)", r, rerr))
			continue
		}
		live, lerr := d.c.live(ctx, o)
		switch {
		case lerr != nil:
			errs = append(errs, fmt.Errorf("pruning %s: %w", r, lerr))
			continue
		case live == nil:
			lines = append(lines, fmt.Sprintf("%s: already gone", r))
			continue
		case !appliedByGantry(live):
			d.log.Warningf("%s is no longer in the manifests but another tool manages it now: not pruned", r)
			lines = append(lines, fmt.Sprintf("%s: kept (no longer applied by gantry)", r))
			continue
		}
		bg := metav1.DeletePropagationBackground
		if derr := res.Delete(ctx, r.Name, metav1.DeleteOptions{PropagationPolicy: &bg}); derr != nil && !apierrors.IsNotFound(derr) {
			errs = append(errs, fmt.Errorf("pruning %s: %w", r, derr))
			continue
		}
		d.log.Infof("pruned %s (in the previous release, not in this one)", r)
		lines = append(lines, fmt.Sprintf("%s: pruned", r))
	}
	return lines, errors.Join(errs...)
}
