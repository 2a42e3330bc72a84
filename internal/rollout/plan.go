package rollout

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// Plan is what a deploy would do, found by a server-side dry run.
type Plan struct {
	Environment string     `json:"environment"`
	Image       string     `json:"image"`
	Items       []PlanItem `json:"items,omitempty"`
	// Progressive is the schedule of a blue-green or canary deploy.
	Progressive *ProgressivePlan `json:"progressive,omitempty"`
	File        string           `json:"-"`
}

// PlanItem is one object's fate.
type PlanItem struct {
	Kind      string        `json:"kind"`
	Namespace string        `json:"namespace,omitempty"`
	Name      string        `json:"name"`
	Action    string        `json:"action"` // create, configure, unchanged, delete (pruned), keep (dropped from the manifests, not pruned), hook <point>
	Images    []ImageChange `json:"images,omitempty"`
	Note      string        `json:"note,omitempty"`
}

// ImageChange is a container whose image the deploy changes.
type ImageChange struct {
	Container string `json:"container"`
	Before    string `json:"before,omitempty"`
	After     string `json:"after"`
}

// plan renders and dry-runs the deploy without touching the cluster.
func (d *deployer) plan(ctx context.Context) (Outputs, error) {
	out := Outputs{Status: StatusPlanned, DeploymentURL: d.in.EnvironmentURL}
	if err := d.admit(ctx, &out, true, true); err != nil {
		return out, err
	}
	objs, _, err := d.render(ctx)
	if err != nil {
		return out, err
	}
	p := &Plan{Environment: d.in.Environment, Image: d.digest.String()}
	objs, hooks, err := splitHooks(objs)
	if err != nil {
		return out, err
	}
	for _, point := range hookPoints {
		for _, h := range hooks[point] {
			p.Items = append(p.Items, PlanItem{Kind: "Job", Namespace: h.GetNamespace(), Name: h.GetName(), Action: "hook " + point,
				Note: "runs as a Job of its own (" + h.GetName() + "-<digest>-<random>) " + map[string]string{
					HookPreDeploy: "before anything is applied", HookPostDeploy: "after every workload rolled out", HookOnRollback: "after an automatic rollback"}[point]})
		}
	}
	missingNS := map[string]bool{}
	for _, o := range objs {
		item := PlanItem{Kind: o.GetKind(), Namespace: o.GetNamespace(), Name: o.GetName()}
		live, err := d.c.live(ctx, o)
		if err != nil {
			return out, fmt.Errorf("reading %s %s: %w", o.GetKind(), key(o), err)
		}
		if o.GetKind() == "Deployment" {
			item.Images = imageChanges(live, o)
			if live != nil {
				out.PreviousDigest = digestOf(toDeployment(live).Spec.Template, d.digest.Context().String())
			}
		}
		switch {
		case missingNS[o.GetNamespace()]:
			item.Action, item.Note = "create", "namespace is created by this deploy: not dry-run"
		case live == nil:
			item.Action = "create"
			if _, err := d.c.apply(ctx, o, true); err != nil {
				return out, fmt.Errorf("dry run: %w", err)
			}
			if o.GetKind() == "Namespace" {
				missingNS[o.GetName()] = true
			}
		default:
			after, err := d.c.apply(ctx, o, true)
			if err != nil {
				if apierrors.IsNotFound(err) {
					item.Action, item.Note = "create", "not found on dry run"
					break
				}
				return out, fmt.Errorf("dry run: %w", err)
			}
			item.Action = "unchanged"
			if !sameObject(live, after) {
				item.Action = "configure"
			}
		}
		p.Items = append(p.Items, item)
	}
	items, err := d.planPrune(ctx, objs)
	if err != nil {
		return out, err
	}
	p.Items = append(p.Items, items...)
	if d.in.PlanFile != "" {
		abs, err := filepath.Abs(d.in.PlanFile)
		if err != nil {
			return out, err
		}
		b, _ := json.MarshalIndent(p, "", "  ")
		if err := os.WriteFile(abs, append(b, '\n'), 0o644); err != nil {
			return out, fmt.Errorf(`input "plan-file": %w`, err)
		}
		p.File = abs
	}
	out.Plan = p
	out.Summary = planSummary(p) + d.verifiedSummary()
	for _, it := range p.Items {
		d.log.Infof("%-10s %s %s", it.Action, it.Kind, strings.TrimPrefix(it.Namespace+"/"+it.Name, "/"))
	}
	return out, nil
}

// sameObject compares what a user changes: everything but the server's
// bookkeeping (managed fields, resource version, generation, status).
func sameObject(a, b *unstructured.Unstructured) bool {
	clean := func(u *unstructured.Unstructured) map[string]any {
		c := u.DeepCopy().Object
		delete(c, "status")
		if m, ok := c["metadata"].(map[string]any); ok {
			for _, k := range []string{"managedFields", "resourceVersion", "generation", "creationTimestamp", "uid"} {
				delete(m, k)
			}
			if ann, ok := m["annotations"].(map[string]any); ok {
				delete(ann, AnnotationRunURL)
				delete(ann, "deployment.kubernetes.io/revision")
				if len(ann) == 0 {
					delete(m, "annotations")
				}
			}
		}
		return c
	}
	return equality.Semantic.DeepEqual(clean(a), clean(b))
}

func imageChanges(live, want *unstructured.Unstructured) []ImageChange {
	before := map[string]string{}
	if live != nil {
		for _, c := range toDeployment(live).Spec.Template.Spec.Containers {
			before[c.Name] = c.Image
		}
	}
	var out []ImageChange
	for _, c := range toDeployment(want).Spec.Template.Spec.Containers {
		if before[c.Name] != c.Image {
			out = append(out, ImageChange{Container: c.Name, Before: before[c.Name], After: c.Image})
		}
	}
	return out
}

// planPrune lists what the deploy would prune: objects of the deployed
// release these manifests no longer have, that still exist and that
// Gantry still applies.
func (d *deployer) planPrune(ctx context.Context, objs []*unstructured.Unstructured) ([]PlanItem, error) {
	ns, err := releaseNamespace(objs)
	if err != nil || !d.in.Prune || d.in.Strategy != "rolling" {
		return nil, nil
	}
	history, err := d.c.releases(ctx, ns, d.in.Environment)
	if err != nil {
		return nil, err
	}
	cur := deployedRelease(history)
	prune, kept := pruneList(cur, objs)
	var items []PlanItem
	for _, r := range kept {
		items = append(items, PlanItem{Kind: r.Kind, Namespace: r.Namespace, Name: r.Name, Action: "keep", Note: fmt.Sprintf("in %s, not in these manifests; a %s is never pruned", cur, r.Kind)})
	}
	for _, r := range prune {
		item := PlanItem{Kind: r.Kind, Namespace: r.Namespace, Name: r.Name, Action: "delete", Note: fmt.Sprintf("pruned: in %s, not in these manifests", cur)}
		if _, err := d.c.resource(r.object()); err != nil {
			item.Action, item.Note = "keep", fmt.Sprintf("in %s, not in these manifests; its kind is not served: %v", cur, err)
		} else if live, err := d.c.live(ctx, r.object()); err != nil {
			return nil, fmt.Errorf("reading %s: %w", r, err)
		} else if live == nil {
			continue
		} else if !appliedByGantry(live) {
			item.Action, item.Note = "keep", fmt.Sprintf("in %s, not in these manifests; another tool manages it now", cur)
		}
		items = append(items, item)
	}
	return items, nil
}
