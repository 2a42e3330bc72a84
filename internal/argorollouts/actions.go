package argorollouts

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
)

// ParseDigestImage checks that image names an image by digest,
// repo@sha256:<64 hex digits>, and returns it unchanged. Stages hand each
// other digests, never tags: a tag could move between the check and the
// rollout.
func ParseDigestImage(image string) (string, error) {
	image = strings.TrimSpace(image)
	if image == "" {
		return "", fmt.Errorf("the image is empty: give the image by digest, repo@sha256:<64 hex digits> (the build stage's digest output)")
	}
	if !strings.Contains(image, "@") {
		return "", fmt.Errorf("image %q is not pinned by digest: give repo@sha256:<64 hex digits> (the build stage's digest output), not a tag", image)
	}
	d, err := name.NewDigest(image)
	if err != nil {
		return "", fmt.Errorf("image %q is not a valid image by digest (repo@sha256:<64 hex digits>): %w", image, err)
	}
	// A reference with both a tag and a digest ("repo:tag@sha256:…") parses,
	// but runtimes ignore the tag, and it misleads whoever reads it.
	repo, _, _ := strings.Cut(image, "@")
	if i := strings.LastIndex(repo, ":"); i > strings.LastIndex(repo, "/") {
		return "", fmt.Errorf("image %q has both a tag and a digest: give %s@%s without the tag", image, repo[:i], d.DigestStr())
	}
	return image, nil
}

// SetImage sets the image of one container of the Rollout's pod template
// (an init container too) to image, which must be pinned by digest. It is
// a server-side apply of that one field, owned by FieldManager, so the
// Rollout's other fields and their owners stay as they are; the
// controller then starts the canary. A Rollout that takes its template
// from a Deployment (spec.workloadRef) gets the image set on that
// Deployment, as the controller reads it from there. Setting the image the
// template already has changes nothing.
func (d *Driver) SetImage(ctx context.Context, containerName, image string) error {
	if containerName == "" {
		return fmt.Errorf("%s: the container name is empty: give the name of the container whose image to set", d)
	}
	img, err := ParseDigestImage(image)
	if err != nil {
		return fmt.Errorf("%s: %w", d, err)
	}
	obj, err := d.get(ctx)
	if err != nil {
		return err
	}
	r, err := decodeRollout(obj)
	if err != nil {
		return err
	}
	target, res := d.String(), d.rollouts()
	apiVersion, kind, objName := RolloutGVR().GroupVersion().String(), "Rollout", d.name
	spec := r.Spec.Template.Spec
	w, err := d.workload(ctx, r)
	if err != nil {
		return err
	}
	if w != nil {
		spec = w.spec
		target = "Deployment " + d.namespace + "/" + w.name + " (the workloadRef of " + d.String() + ")"
		res = d.dyn.Resource(deploymentGVR()).Namespace(d.namespace)
		apiVersion, kind, objName = "apps/v1", "Deployment", w.name
	}
	field := ""
	switch {
	case slices.ContainsFunc(spec.Containers, func(c container) bool { return c.Name == containerName }):
		field = "containers"
	case slices.ContainsFunc(spec.InitContainers, func(c container) bool { return c.Name == containerName }):
		field = "initContainers"
	default:
		return fmt.Errorf("%s has no container %q (its containers: %s): give one of those names", target, containerName, strings.Join(slices.Sorted(maps.Keys(spec.images())), ", "))
	}
	// containers and initContainers are lists keyed by name in the CRD
	// schema (as in a Deployment), so the apply names one entry and owns
	// only its image.
	patch := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": apiVersion,
		"kind":       kind,
		"metadata":   map[string]any{"name": objName, "namespace": d.namespace},
		"spec": map[string]any{"template": map[string]any{"spec": map[string]any{
			field: []any{map[string]any{"name": containerName, "image": img}},
		}}},
	}}
	// Force: the image was last set by whoever created the object
	// (kubectl, Argo CD, ...); the deploy takes the field over.
	if _, err := res.Apply(ctx, objName, patch, metav1.ApplyOptions{FieldManager: FieldManager, Force: true}); err != nil {
		return fmt.Errorf("setting the image of container %s of %s to %s: %w", containerName, target, img, err)
	}
	d.log.Infof("%s: container %s set to %s (server-side apply, field manager %s)", target, containerName, img, FieldManager)
	return nil
}

// workload is the Deployment a Rollout takes its pod template from
// (spec.workloadRef).
type workload struct {
	name       string
	generation int64
	spec       podSpec
}

// workload reads the Rollout's workloadRef Deployment; nil without one.
func (d *Driver) workload(ctx context.Context, r *rollout) (*workload, error) {
	ref := r.Spec.WorkloadRef
	if ref == nil || ref.Name == "" {
		return nil, nil
	}
	if ref.Kind != "" && ref.Kind != "Deployment" {
		return nil, fmt.Errorf("%s takes its pod template from %s %s (spec.workloadRef): only a Deployment is supported", d, ref.Kind, ref.Name)
	}
	dep, err := d.dyn.Resource(deploymentGVR()).Namespace(d.namespace).Get(ctx, ref.Name, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("%s takes its pod template from Deployment %s (spec.workloadRef): reading it: %w", d, ref.Name, err)
	}
	var obj struct {
		Spec struct {
			Template struct {
				Spec podSpec `json:"spec"`
			} `json:"template"`
		} `json:"spec"`
	}
	if err := decodeInto(dep, &obj); err != nil {
		return nil, err
	}
	return &workload{name: ref.Name, generation: dep.GetGeneration(), spec: obj.Spec.Template.Spec}, nil
}

func deploymentGVR() schema.GroupVersionResource {
	return schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}
}

func decodeInto(u *unstructured.Unstructured, into any) error {
	b, err := u.MarshalJSON()
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, into); err != nil {
		return fmt.Errorf("decoding %s %s: %w", u.GetKind(), u.GetName(), err)
	}
	return nil
}

// Promote moves the Rollout on, as `kubectl argo rollouts promote` does.
// Without full it ends the current pause (a pause step, an inconclusive
// analysis, a manual Pause) or, when nothing pauses it, skips the step in
// progress; the controller then runs the following steps. With full it
// skips every remaining step, analysis and pause and makes the desired
// template stable at once. A Rollout with no update in progress (fully
// promoted) has nothing to promote: that is an error.
func (d *Driver) Promote(ctx context.Context, full bool) error {
	what := "promoted one step"
	if full {
		what = "fully promoted (remaining steps skipped)"
	}
	return d.patchStatus(ctx, "promoting", what, func(r *rollout) (spec, status map[string]any, err error) {
		if r.generationObserved() && r.fullyPromoted() && !r.Spec.Paused {
			return nil, nil, fmt.Errorf("%s has no update in progress (stable = desired = %s): nothing to promote", d, r.Status.StableRS)
		}
		if !r.generationObserved() && !full {
			return nil, nil, fmt.Errorf("%s: the controller has not yet observed generation %d, so its current step is unknown: Wait for it, then promote", d, r.Metadata.Generation)
		}
		if r.Spec.Paused {
			spec = map[string]any{"paused": false}
		}
		if full {
			if !r.fullyPromoted() || !r.generationObserved() {
				status = map[string]any{"promoteFull": true}
			}
			return spec, status, nil
		}
		i, hasSteps := r.stepIndex()
		next := int64(min(i+1, len(r.steps())))
		inconclusive := r.Status.Canary.CurrentStepAnalysisRunStatus != nil && r.Status.Canary.CurrentStepAnalysisRunStatus.Status == "Inconclusive"
		switch {
		case hasSteps && inconclusive && r.Status.ControllerPause && len(r.Status.PauseConditions) > 0:
			// The controller pauses on an inconclusive analysis; only
			// clearing the pause would run the same analysis again.
			status = map[string]any{"pauseConditions": nil, "controllerPause": false, "currentStepIndex": next}
		case len(r.Status.PauseConditions) > 0:
			status = map[string]any{"pauseConditions": nil}
		case hasSteps && !r.Spec.Paused:
			// Not paused: skip the step in progress (an analysis, say).
			status = map[string]any{"pauseConditions": nil, "currentStepIndex": next}
		}
		return spec, status, nil
	})
}

// Abort stops the update in progress, as `kubectl argo rollouts abort`
// does: the controller sends all traffic back to the stable ReplicaSet,
// scales the canary down and reports Degraded (RolloutAborted). The pod
// template keeps the new image; Retry starts the update again, setting the
// old image rolls back for good. Aborting an aborted Rollout does nothing;
// a Rollout with no update in progress has nothing to abort: an error.
func (d *Driver) Abort(ctx context.Context) error {
	return d.patchStatus(ctx, "aborting", "aborted: traffic goes back to stable", func(r *rollout) (spec, status map[string]any, err error) {
		if r.Status.Abort {
			return nil, nil, nil
		}
		if r.generationObserved() && r.fullyPromoted() {
			return nil, nil, fmt.Errorf("%s has no update in progress (stable = desired = %s): nothing to abort", d, r.Status.StableRS)
		}
		return nil, map[string]any{"abort": true}, nil
	})
}

// Retry restarts an aborted update from its first step, as `kubectl argo
// rollouts retry` does. A Rollout that is not aborted: an error.
func (d *Driver) Retry(ctx context.Context) error {
	return d.patchStatus(ctx, "retrying", "retrying the aborted update from its first step", func(r *rollout) (spec, status map[string]any, err error) {
		if !r.Status.Abort {
			return nil, nil, fmt.Errorf("%s is not aborted (%s): nothing to retry", d, orUnknown(r.Status.Phase))
		}
		return nil, map[string]any{"abort": false}, nil
	})
}

// Pause stops the Rollout where it is (spec.paused), as `kubectl argo
// rollouts pause` does: the controller keeps the current weights and does
// not advance steps until Resume (or Promote). Pausing a paused Rollout
// does nothing.
func (d *Driver) Pause(ctx context.Context) error {
	return d.patchSpec(ctx, "pausing", true)
}

// Resume lifts a Pause (spec.paused=false). A pause step or an inconclusive
// analysis still holds the Rollout: Promote moves past those.
func (d *Driver) Resume(ctx context.Context) error {
	return d.patchSpec(ctx, "resuming", false)
}

func orUnknown(phase string) string {
	if phase == "" {
		return "no phase reported yet"
	}
	return phase
}

func (d *Driver) patchSpec(ctx context.Context, verb string, paused bool) error {
	if _, err := d.get(ctx); err != nil {
		return err
	}
	b, err := json.Marshal(map[string]any{"spec": map[string]any{"paused": paused}})
	if err != nil {
		return err
	}
	if _, err := d.rollouts().Patch(ctx, d.name, types.MergePatchType, b, metav1.PatchOptions{FieldManager: FieldManager}); err != nil {
		return fmt.Errorf("%s %s: %w", verb, d, err)
	}
	d.log.Infof("%s: %s", d, map[bool]string{true: "paused (spec.paused)", false: "resumed (spec.paused=false)"}[paused])
	return nil
}

// patchStatus reads the Rollout, lets decide compute the spec and status
// changes, and writes them as merge patches. The status patch carries the
// resourceVersion it was computed from: the controller writes status all
// the time, and a promotion computed from a stale step index would skip a
// step. On a conflict it reads again and decides again.
func (d *Driver) patchStatus(ctx context.Context, verb, done string, decide func(*rollout) (spec, status map[string]any, err error)) error {
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		obj, err := d.get(ctx)
		if err != nil {
			return err
		}
		r, err := decodeRollout(obj)
		if err != nil {
			return err
		}
		spec, status, err := decide(r)
		if err != nil {
			return err
		}
		// Status first, as the plugin does: once spec.paused is false the
		// controller acts on whatever status it sees.
		if status != nil {
			b, err := json.Marshal(map[string]any{
				"metadata": map[string]any{"resourceVersion": r.Metadata.ResourceVersion},
				"status":   status,
			})
			if err != nil {
				return err
			}
			_, err = d.rollouts().Patch(ctx, d.name, types.MergePatchType, b, metav1.PatchOptions{FieldManager: FieldManager}, "status")
			if err != nil {
				if apierrors.IsConflict(err) {
					return err
				}
				return fmt.Errorf("%s %s (status): %w", verb, d, err)
			}
		}
		if spec != nil {
			b, err := json.Marshal(map[string]any{"spec": spec})
			if err != nil {
				return err
			}
			if _, err := d.rollouts().Patch(ctx, d.name, types.MergePatchType, b, metav1.PatchOptions{FieldManager: FieldManager}); err != nil {
				return fmt.Errorf("%s %s: %w", verb, d, err)
			}
		}
		if spec != nil || status != nil {
			d.log.Infof("%s: %s", d, done)
		}
		return nil
	})
}
