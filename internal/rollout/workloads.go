package rollout

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"

	"github.com/gantry-ci/gantry/internal/argorollouts"
	"github.com/gantry-ci/gantry/internal/ghaction"
)

// Workload kinds a rolling deploy rolls out and waits for together.
const (
	KindDeployment  = "Deployment"
	KindStatefulSet = "StatefulSet"
	KindDaemonSet   = "DaemonSet"
	// KindRollout is an Argo Rollouts Rollout: in a rolling release its own
	// strategy (canary or blue-green steps by replica count) runs, and the
	// release waits for it to become Healthy.
	KindRollout = "Rollout"
)

// statusStep reads a workload once: done when its rollout is complete, a
// Failure when it cannot complete. Progress is logged when it changed
// since it was last logged.
func (c *cluster) statusStep(ctx context.Context, log ghaction.Logger, t *target) (bool, error) {
	ns, name := t.obj.GetNamespace(), t.obj.GetName()
	switch t.kind() {
	case KindStatefulSet:
		return c.statefulSetStep(ctx, log, ns, name, &t.progress)
	case KindDaemonSet:
		return c.daemonSetStep(ctx, log, ns, name, &t.progress)
	case KindRollout:
		return c.rolloutStep(ctx, log, t.obj, &t.progress)
	}
	dep, done, err := c.deploymentStep(ctx, log, ns, name, &t.deployProgress)
	if dep != nil {
		t.revision = revisionOf(dep)
		p := progressOf(dep)
		t.ready = fmt.Sprintf("%d/%d ready", p.Ready, p.Desired)
	}
	return done, err
}

// statefulSetStep is kubectl rollout status for a StatefulSet: with a
// RollingUpdate partition, done when the pods at or above it are updated
// and ready; otherwise when every pod runs the update revision and is
// ready. OnDelete StatefulSets have no rollout to wait for.
func (c *cluster) statefulSetStep(ctx context.Context, log ghaction.Logger, ns, name string, last *string) (bool, error) {
	s, err := c.typed.AppsV1().StatefulSets(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return false, fmt.Errorf("reading statefulset %s/%s: %w", ns, name, err)
	}
	if s.Status.ObservedGeneration < s.Generation {
		return false, nil
	}
	replicas := int32(1)
	if s.Spec.Replicas != nil {
		replicas = *s.Spec.Replicas
	}
	partition := int32(0)
	if ru := s.Spec.UpdateStrategy.RollingUpdate; ru != nil && ru.Partition != nil {
		partition = *ru.Partition
	}
	p := fmt.Sprintf("StatefulSet %s/%s: %d/%d updated, %d ready", ns, name, s.Status.UpdatedReplicas, replicas-min(partition, replicas), s.Status.ReadyReplicas)
	if partition > 0 {
		p += fmt.Sprintf(" (partition %d: pods below it keep the current revision)", partition)
	}
	if p != *last {
		log.Infof("%s", p)
		*last = p
	}
	if s.Spec.UpdateStrategy.Type == appsv1.OnDeleteStatefulSetStrategyType {
		log.Infof("StatefulSet %s/%s updates OnDelete: its pods change when deleted, so there is no rollout to wait for", ns, name)
		return true, nil
	}
	switch {
	case partition > 0:
		if s.Status.UpdatedReplicas >= replicas-min(partition, replicas) && s.Status.ReadyReplicas >= replicas {
			return true, nil
		}
	case s.Status.UpdateRevision == s.Status.CurrentRevision && s.Status.UpdatedReplicas == replicas && s.Status.ReadyReplicas == replicas:
		return true, nil
	}
	pods, err := c.revisionPods(ctx, ns, s.Spec.Selector, s.Status.UpdateRevision)
	if err == nil {
		if f := podFailure(pods); f != nil {
			f.Logs = c.logs(ctx, ns, f.Pod, strings.TrimSuffix(f.Container, " (init)"))
			return false, f
		}
	}
	return false, nil
}

// daemonSetStep is kubectl rollout status for a DaemonSet: done when every
// scheduled pod is updated and available.
func (c *cluster) daemonSetStep(ctx context.Context, log ghaction.Logger, ns, name string, last *string) (bool, error) {
	ds, err := c.typed.AppsV1().DaemonSets(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return false, fmt.Errorf("reading daemonset %s/%s: %w", ns, name, err)
	}
	if ds.Status.ObservedGeneration < ds.Generation {
		return false, nil
	}
	st := ds.Status
	p := fmt.Sprintf("DaemonSet %s/%s: %d/%d updated, %d available", ns, name, st.UpdatedNumberScheduled, st.DesiredNumberScheduled, st.NumberAvailable)
	if p != *last {
		log.Infof("%s", p)
		*last = p
	}
	if ds.Spec.UpdateStrategy.Type == appsv1.OnDeleteDaemonSetStrategyType {
		log.Infof("DaemonSet %s/%s updates OnDelete: there is no rollout to wait for", ns, name)
		return true, nil
	}
	if st.UpdatedNumberScheduled == st.DesiredNumberScheduled && st.NumberAvailable == st.DesiredNumberScheduled {
		return true, nil
	}
	if hash, err := c.newestControllerRevision(ctx, ns, ds.UID, ds.Spec.Selector); err == nil && hash != "" {
		if pods, err := c.revisionPods(ctx, ns, ds.Spec.Selector, hash); err == nil {
			if f := podFailure(pods); f != nil {
				f.Logs = c.logs(ctx, ns, f.Pod, strings.TrimSuffix(f.Container, " (init)"))
				return false, f
			}
		}
	}
	return false, nil
}

// rolloutStep reads an Argo Rollouts Rollout of a rolling release once:
// done when the controller reports it Healthy; Degraded (aborted by its
// analysis, past its progress deadline, an invalid spec) is a failure, and
// a new pod that cannot start fails at once, as a Deployment's would. A
// Rollout paused at a step without a duration waits for a promotion
// (kubectl argo rollouts promote), within the deploy's timeout.
func (c *cluster) rolloutStep(ctx context.Context, log ghaction.Logger, obj *unstructured.Unstructured, last *string) (bool, error) {
	ns, name := obj.GetNamespace(), obj.GetName()
	st, err := argorollouts.New(c.dynamic, ns, name).Status(ctx)
	if err != nil {
		return false, fmt.Errorf("reading Rollout %s/%s: %w", ns, name, err)
	}
	p := fmt.Sprintf("Rollout %s/%s: %s, %d/%d updated, %d ready", ns, name, st.Phase, st.Updated, st.Desired, st.Ready)
	if st.Message != "" {
		p += " (" + st.Message + ")"
	}
	if st.Phase == argorollouts.PhasePaused && st.TotalSteps > 0 {
		p += fmt.Sprintf("; paused at step %d of %d: promote it, or let its pause duration pass", st.Step+1, st.TotalSteps)
	}
	if p != *last {
		log.Infof("%s", p)
		*last = p
	}
	switch st.Phase {
	case argorollouts.PhaseHealthy:
		return true, nil
	case argorollouts.PhaseDegraded:
		return false, &Failure{Reason: "RolloutDegraded", Message: st.Message}
	}
	// Until the controller observed the last write its status (and the
	// canary's hash) describes the template before it: after a rollback
	// that is the failed one.
	if st.Canary.Hash == "" || st.ObservedGeneration < st.Generation {
		return false, nil
	}
	var sel *metav1.LabelSelector
	if m, found, _ := unstructured.NestedMap(obj.Object, "spec", "selector"); found {
		sel = &metav1.LabelSelector{}
		if runtime.DefaultUnstructuredConverter.FromUnstructured(m, sel) != nil {
			return false, nil
		}
	}
	if pods, err := c.hashPods(ctx, ns, sel, argorollouts.PodTemplateHashLabel, st.Canary.Hash); err == nil {
		if f := podFailure(pods); f != nil {
			f.Logs = c.logs(ctx, ns, f.Pod, strings.TrimSuffix(f.Container, " (init)"))
			return false, f
		}
	}
	return false, nil
}

// revisionPods lists the pods of a StatefulSet or DaemonSet revision (the
// controller-revision-hash label).
func (c *cluster) revisionPods(ctx context.Context, ns string, sel *metav1.LabelSelector, hash string) ([]corev1.Pod, error) {
	return c.hashPods(ctx, ns, sel, appsv1.ControllerRevisionHashLabelKey, hash)
}

// hashPods lists the pods of sel whose label is hash.
func (c *cluster) hashPods(ctx context.Context, ns string, sel *metav1.LabelSelector, label, hash string) ([]corev1.Pod, error) {
	if sel == nil {
		sel = &metav1.LabelSelector{}
	}
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		return nil, err
	}
	req, err := labels.NewRequirement(label, "=", []string{hash})
	if err != nil {
		return nil, err
	}
	list, err := c.typed.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: s.Add(*req).String()})
	if err != nil {
		return nil, err
	}
	return list.Items, nil
}

// newestControllerRevision is the hash label of the owner's newest
// ControllerRevision: a DaemonSet's update revision.
func (c *cluster) newestControllerRevision(ctx context.Context, ns string, owner types.UID, sel *metav1.LabelSelector) (string, error) {
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		return "", err
	}
	list, err := c.typed.AppsV1().ControllerRevisions(ns).List(ctx, metav1.ListOptions{LabelSelector: s.String()})
	if err != nil {
		return "", err
	}
	var newest *appsv1.ControllerRevision
	for i := range list.Items {
		cr := &list.Items[i]
		if !metav1.IsControlledBy(cr, &metav1.ObjectMeta{UID: owner}) {
			continue
		}
		if newest == nil || cr.Revision > newest.Revision {
			newest = cr
		}
	}
	if newest == nil {
		return "", nil
	}
	return newest.Labels[appsv1.ControllerRevisionHashLabelKey], nil
}

// waitAll waits for every target's rollout at once, and returns the first
// that fails with its failure. Targets that completed are marked done.
func (d *deployer) waitAll(ctx context.Context, targets []*target) (*target, error) {
	for {
		pending := 0
		for _, t := range targets {
			if t.done {
				continue
			}
			done, err := d.c.statusStep(ctx, d.log, t)
			if err != nil {
				return t, err
			}
			if done {
				t.done = true
				what := "rolled out"
				if t.kind() == KindDeployment {
					what = fmt.Sprintf("rolled out revision %d", t.revision)
				}
				d.log.Infof("%s %s: %s", t.kind(), key(t.obj), what)
				continue
			}
			pending++
		}
		if pending == 0 {
			return nil, nil
		}
		select {
		case <-ctx.Done():
			var waiting []string
			var first *target
			for _, t := range targets {
				if !t.done {
					waiting = append(waiting, t.kind()+" "+key(t.obj))
					if first == nil {
						first = t
					}
				}
			}
			return first, fmt.Errorf("waiting for %s: %w", strings.Join(waiting, ", "), ctx.Err())
		case <-time.After(d.in.Poll):
		}
	}
}

// snapshot records a workload as it is before this run applies it: the
// live object (nil when new) — its generation tells whether the apply
// changed it, its pod template is what a StatefulSet's or DaemonSet's
// rollback restores — and, for a Deployment, the revision to return to.
func (d *deployer) snapshot(ctx context.Context, t *target) error {
	live, err := d.c.live(ctx, t.obj)
	if err != nil {
		return fmt.Errorf("reading %s %s: %w", t.kind(), key(t.obj), err)
	}
	if live == nil {
		return nil
	}
	t.existed, t.before = true, live
	repo := d.digest.Context().String()
	if t.kind() == KindDeployment {
		dep := toDeployment(live)
		t.prevRevision = revisionOf(dep)
		t.previousDigest = digestOf(dep.Spec.Template, repo)
		if t.previousDigest == d.digest.DigestStr() {
			d.rerun(ctx, t, dep)
		}
		return nil
	}
	var pt corev1.PodTemplateSpec
	if tmpl, found, err := unstructured.NestedMap(live.Object, "spec", "template"); err == nil && found {
		if runtime.DefaultUnstructuredConverter.FromUnstructured(tmpl, &pt) == nil {
			t.previousDigest = digestOf(pt, repo)
		}
	}
	return nil
}

// markChanged settles, after the apply, whether this run changed the
// workload: created it, or moved its generation (its spec). A Deployment
// an earlier run of this deploy already moved to the digest (its runner
// died after the apply) counts as changed: its rollback target is the
// revision before that run.
func (d *deployer) markChanged(ctx context.Context, t *target) {
	if !t.existed || t.rerun {
		t.changed = true
		return
	}
	live, err := d.c.live(ctx, t.obj)
	t.changed = err != nil || live == nil || live.GetGeneration() != t.before.GetGeneration()
}

// rollbackAll returns every workload this run changed to what it was
// before the run, in the reverse order of the manifests: Deployments to
// their previous revision, StatefulSets and DaemonSets to their previous
// pod template, and workloads this run created are removed. Each
// target's outcome says what happened to it.
func (d *deployer) rollbackAll(ctx context.Context, targets []*target, reason string) error {
	var errs []error
	for i := len(targets) - 1; i >= 0; i-- {
		t := targets[i]
		if !t.changed {
			t.outcome = "unchanged by this run"
			continue
		}
		if err := d.rollbackOne(ctx, t, reason); err != nil {
			t.outcome = "rollback failed: " + err.Error()
			errs = append(errs, fmt.Errorf("%s %s: %w", t.kind(), key(t.obj), err))
		}
	}
	return errors.Join(errs...)
}

func (d *deployer) rollbackOne(ctx context.Context, t *target, reason string) error {
	ns, name := t.obj.GetNamespace(), t.obj.GetName()
	if !t.existed {
		res, err := d.c.resource(t.obj)
		if err != nil {
			return err
		}
		bg := metav1.DeletePropagationBackground
		if err := res.Delete(ctx, name, metav1.DeleteOptions{PropagationPolicy: &bg}); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("removing it (this run created it): %w", err)
		}
		d.log.Infof("%s %s: removed (this run created it)", t.kind(), key(t.obj))
		t.outcome = "removed (created by this run)"
		return nil
	}
	if t.kind() == KindDeployment {
		if t.prevRevision <= 0 {
			return errors.New("no earlier revision of another digest to return to")
		}
		r, err := d.restore(ctx, ns, name, RollbackTarget{Kind: "revision", Value: fmt.Sprint(t.prevRevision)}, reason)
		if err != nil {
			return err
		}
		t.revision, t.restored = r.Number, &r
		t.outcome = "rolled back to " + r.String()
		return nil
	}
	return d.revertTemplate(ctx, t, reason)
}

// revertTemplate puts a StatefulSet's or DaemonSet's pod template back to
// the one it had before the run, as kubectl rollout undo does with a
// ControllerRevision, and waits for it. A StatefulSet with OrderedReady
// pod management never replaces a pod that is not Ready: Kubernetes' known
// "forced rollback" case. Its pods of the failed revision that are not
// Ready are deleted, as the Kubernetes documentation advises, and the log
// says so.
func (d *deployer) revertTemplate(ctx context.Context, t *target, reason string) error {
	ctx, cancel := context.WithTimeout(ctx, max(d.in.Timeout, time.Minute))
	defer cancel()
	ns, name := t.obj.GetNamespace(), t.obj.GetName()
	res, err := d.c.resource(t.obj)
	if err != nil {
		return err
	}
	var failedRevision string
	if t.kind() == KindStatefulSet {
		if s, err := d.c.typed.AppsV1().StatefulSets(ns).Get(ctx, name, metav1.GetOptions{}); err == nil {
			failedRevision = s.Status.UpdateRevision
		}
	}
	template, found, err := unstructured.NestedMap(t.before.Object, "spec", "template")
	if err != nil || !found {
		return fmt.Errorf("its pod template before the run is unreadable (%v)", err)
	}
	patch, err := json.Marshal([]map[string]any{
		{"op": "replace", "path": "/spec/template", "value": template},
		{"op": "add", "path": "/metadata/annotations/gantry.dev~1rollback-reason", "value": truncate(reason, 250)},
	})
	if err != nil {
		return err
	}
	if _, err := res.Patch(ctx, name, types.JSONPatchType, patch, metav1.PatchOptions{FieldManager: FieldManager + "-rollback"}); err != nil {
		return fmt.Errorf("restoring its previous pod template: %w", err)
	}
	d.log.Infof("%s %s: restoring its previous pod template (%s)", t.kind(), key(t.obj), or(t.previousDigest, "previous images"))
	if t.kind() == KindStatefulSet && failedRevision != "" {
		s, err := d.c.typed.AppsV1().StatefulSets(ns).Get(ctx, name, metav1.GetOptions{})
		if err == nil && s.Spec.PodManagementPolicy != appsv1.ParallelPodManagement {
			pods, err := d.c.revisionPods(ctx, ns, s.Spec.Selector, failedRevision)
			if err == nil {
				sort.Slice(pods, func(i, j int) bool { return pods[i].Name < pods[j].Name })
				for _, p := range pods {
					if podReady(p) {
						continue
					}
					if err := d.c.typed.CoreV1().Pods(ns).Delete(ctx, p.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
						return fmt.Errorf("deleting pod %s of the failed revision: %w", p.Name, err)
					}
					d.log.Infof("StatefulSet %s: deleted pod %s of the failed revision %s: with OrderedReady pod management a pod that never becomes Ready blocks the rollback (Kubernetes' forced rollback)", key(t.obj), p.Name, failedRevision)
					t.forced = append(t.forced, p.Name)
				}
			}
		}
	}
	t.done, t.progress = false, ""
	if _, err := d.waitAll(ctx, []*target{t}); err != nil {
		return fmt.Errorf("waiting for the rollback: %w", err)
	}
	t.outcome = "rolled back to its previous pod template"
	if t.previousDigest != "" {
		t.outcome += " (" + t.previousDigest + ")"
	}
	if len(t.forced) > 0 {
		t.outcome += "; deleted pod(s) " + strings.Join(t.forced, ", ") + " of the failed revision (OrderedReady forced rollback)"
	}
	return nil
}

func podReady(p corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// keepAutoscaledReplicas leaves a workload's replicas to its
// HorizontalPodAutoscaler: when one (in the manifests or in the cluster)
// targets a Deployment or StatefulSet that exists, the applied object
// carries the replicas it runs now instead of the manifests' number, so
// the deploy neither scales it back nor fights the autoscaler for the
// field. A workload the release creates starts with the manifests'
// replicas. autoscalers maps "Kind/namespace/name" to the HPA's name.
func (d *deployer) keepAutoscaledReplicas(t *target, autoscalers map[string]string) error {
	if !t.existed || (t.kind() != KindDeployment && t.kind() != KindStatefulSet && t.kind() != KindRollout) {
		return nil
	}
	hpa, ok := autoscalers[t.kind()+"/"+key(t.obj)]
	if !ok {
		return nil
	}
	replicas, found, err := unstructured.NestedInt64(t.before.Object, "spec", "replicas")
	if err != nil || !found {
		return err
	}
	if want, ok, _ := unstructured.NestedInt64(t.obj.Object, "spec", "replicas"); ok && want != replicas {
		d.log.Infof("%s %s: HorizontalPodAutoscaler %s manages its replicas: keeping the %d it runs (the manifests say %d)", t.kind(), key(t.obj), hpa, replicas, want)
	}
	return unstructured.SetNestedField(t.obj.Object, replicas, "spec", "replicas")
}

// autoscalers finds the HorizontalPodAutoscalers of the cluster in ns and
// of the manifests, by the workload they scale ("Kind/namespace/name"):
// one list per deploy, the manifests' own last so they win.
func (d *deployer) autoscalers(ctx context.Context, objs []*unstructured.Unstructured, ns string) (map[string]string, error) {
	out := map[string]string{}
	list, err := d.c.typed.AutoscalingV2().HorizontalPodAutoscalers(ns).List(ctx, metav1.ListOptions{})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsForbidden(err) {
		return nil, fmt.Errorf("listing the HorizontalPodAutoscalers of %s: %w", ns, err)
	}
	if list != nil {
		for _, h := range list.Items {
			out[h.Spec.ScaleTargetRef.Kind+"/"+ns+"/"+h.Spec.ScaleTargetRef.Name] = h.Name
		}
	}
	for _, o := range objs {
		if o.GroupVersionKind().Group == "autoscaling" && o.GetKind() == "HorizontalPodAutoscaler" {
			k, _, _ := unstructured.NestedString(o.Object, "spec", "scaleTargetRef", "kind")
			n, _, _ := unstructured.NestedString(o.Object, "spec", "scaleTargetRef", "name")
			out[k+"/"+o.GetNamespace()+"/"+n] = o.GetName()
		}
	}
	return out, nil
}
