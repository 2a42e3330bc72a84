package rollout

import (
	"fmt"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
)

func toDeployment(u *unstructured.Unstructured) *appsv1.Deployment {
	var d appsv1.Deployment
	runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &d)
	return &d
}

func (d *deployer) summary(out Outputs, targets []*target, r *releaseRun, failure error) string {
	var b strings.Builder
	icon := map[string]string{StatusSuccess: "✅", StatusRolledBack: "↩️", StatusFailure: "❌"}[out.Status]
	fmt.Fprintf(&b, "### gantry-deploy: %s %s to %s\n\n", icon, out.Status, d.in.Environment)
	before := out.PreviousDigest
	if before == "" {
		before = "(none)"
	}
	fmt.Fprintf(&b, "| | |\n|---|---|\n")
	fmt.Fprintf(&b, "| image | `%s` |\n", d.digest)
	if out.Status == StatusRolledBack {
		fmt.Fprintf(&b, "| digest | `%s` (tried `%s`, rolled back) |\n", or(out.Digest, "(none)"), d.digest.DigestStr())
	} else {
		fmt.Fprintf(&b, "| digest | `%s` → `%s` |\n", before, d.digest.DigestStr())
	}
	fmt.Fprintf(&b, "| revision | %s |\n", out.Revision)
	if c := d.chartName(); c != "" {
		fmt.Fprintf(&b, "| chart | %s as release %s |\n", c, d.in.releaseName())
	}
	if rec := r.recorded; rec != nil {
		fmt.Fprintf(&b, "| release | %d (%s)", rec.Revision, rec.Status)
		if rec.HelmRevision > 0 {
			fmt.Fprintf(&b, ", helm release %s revision %d", rec.HelmName, rec.HelmRevision)
		}
		if r.to != nil {
			fmt.Fprintf(&b, ", a rollback to release %d", r.to.Revision)
		}
		fmt.Fprintf(&b, ": ConfigMap `%s` |\n", rec.cm.Name)
	}
	for _, t := range targets {
		state := t.ready
		if t.kind() != KindDeployment && t.done {
			state = "rolled out"
		}
		if failure != nil && t.outcome != "" {
			state = t.outcome
		}
		fmt.Fprintf(&b, "| workload | %s %s %s |\n", t.kind(), key(t.obj), state)
	}
	fmt.Fprintf(&b, "| strategy | %s |\n| took | %s |\n", d.in.Strategy, time.Since(d.started).Round(100*time.Millisecond))
	if d.in.Git.RunURL != "" {
		fmt.Fprintf(&b, "| run | %s |\n", d.in.Git.RunURL)
	}
	if failure != nil {
		fmt.Fprintf(&b, "\n**Failure:** %s\n", failure)
		if f, ok := asFailure(failure); ok && f.Logs != "" {
			fmt.Fprintf(&b, "\n<details><summary>last log lines of %s/%s</summary>\n\n```\n%s\n```\n</details>\n", f.Pod, f.Container, f.Logs)
		}
		if out.Status == StatusRolledBack {
			b.WriteString("\nRolled back automatically, as one release:\n\n")
			for _, t := range targets {
				if t.changed {
					fmt.Fprintf(&b, "- %s %s: %s\n", t.kind(), key(t.obj), t.outcome)
				}
			}
		}
	}
	if len(r.pruned) > 0 {
		b.WriteString("\nObjects the previous release had and this one has not:\n\n")
		for _, l := range r.pruned {
			fmt.Fprintf(&b, "- %s\n", l)
		}
	}
	b.WriteString(d.hooksSummary())
	b.WriteString(d.verifiedSummary())
	if rec := r.recorded; rec != nil && rec.Status == ReleaseDeployed {
		fmt.Fprintf(&b, "\nTo return to this release later, every workload at once: action `rollback`, rollback-to `revision:%d` (or `digest:%s`), namespace `%s`.\n", rec.Revision, d.digest.DigestStr(), r.ns)
	} else if out.Status == StatusSuccess && out.Revision != "" {
		for _, t := range targets {
			if t.kind() != KindDeployment {
				continue
			}
			fmt.Fprintf(&b, "\nTo return to this exact revision later: action `rollback`, rollback-to `revision:%s` (or `digest:%s`), or\n`kubectl rollout undo deployment/%s -n %s --to-revision=%s`\n",
				out.Revision, out.Digest, t.obj.GetName(), t.obj.GetNamespace(), out.Revision)
			break
		}
	}
	return b.String()
}

func (d *deployer) rollbackSummary(ns, name string, out Outputs, r Revision) string {
	var b strings.Builder
	fmt.Fprintf(&b, "### gantry-deploy: ↩️ rolled back %s\n\n", d.in.Environment)
	fmt.Fprintf(&b, "Deployment %s/%s now runs %s (requested: %s).\n\n", ns, name, r, d.in.RollbackTo)
	fmt.Fprintf(&b, "| before | after |\n|---|---|\n| `%s` | `%s` |\n", out.PreviousDigest, strings.Join(r.Images, "`, `"))
	return b.String()
}

func planSummary(p *Plan) string {
	var b strings.Builder
	fmt.Fprintf(&b, "### gantry-deploy: plan for %s\n\nImage `%s` (server-side dry run; nothing was changed)\n\n", p.Environment, p.Image)
	b.WriteString("| action | kind | object | image |\n|---|---|---|---|\n")
	for _, it := range p.Items {
		var imgs []string
		for _, ic := range it.Images {
			before := ic.Before
			if before == "" {
				before = "(new)"
			}
			imgs = append(imgs, fmt.Sprintf("%s: `%s` → `%s`", ic.Container, before, ic.After))
		}
		obj := it.Name
		if it.Namespace != "" {
			obj = it.Namespace + "/" + it.Name
		}
		note := strings.Join(imgs, "<br>")
		if it.Note != "" {
			note = strings.TrimPrefix(note+"<br>"+it.Note, "<br>")
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", it.Action, it.Kind, obj, note)
	}
	if p.File != "" {
		fmt.Fprintf(&b, "\nPlan as JSON: `%s`\n", p.File)
	}
	return b.String()
}
