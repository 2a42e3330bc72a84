package rollout

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// AnnotationHook marks a Job of the manifests as a hook: it is not applied
// with the release but run, under a name of its own for this run, at one
// of the Hook* points.
const AnnotationHook = "gantry.dev/hook"

// Hook points.
const (
	// HookPreDeploy runs before any workload changes (a database
	// migration); when it fails, nothing else is applied.
	HookPreDeploy = "pre-deploy"
	// HookPostDeploy runs once every workload rolled out (a smoke test, a
	// cache warm-up); when it fails, the release is rolled back.
	HookPostDeploy = "post-deploy"
	// HookOnRollback runs after an automatic rollback returned the
	// workloads (the new version's down migration).
	HookOnRollback = "on-rollback"
)

// Labels on every hook Job Gantry runs.
const (
	LabelHook     = "gantry.dev/hook"      // the hook point
	LabelHookName = "gantry.dev/hook-name" // the Job's name in the manifests
)

var hookPoints = []string{HookPreDeploy, HookPostDeploy, HookOnRollback}

// hookRun is one hook Job this run ran.
type hookRun struct {
	point, name, job string
	took             time.Duration
	err              error
	logs             string
}

// splitHooks takes the hook Jobs out of the objects to apply, by point, in
// the manifests' order.
func splitHooks(objs []*unstructured.Unstructured) ([]*unstructured.Unstructured, map[string][]*unstructured.Unstructured, error) {
	var rest []*unstructured.Unstructured
	hooks := map[string][]*unstructured.Unstructured{}
	for _, o := range objs {
		point, ok := o.GetAnnotations()[AnnotationHook]
		if !ok {
			rest = append(rest, o)
			continue
		}
		gvk := o.GroupVersionKind()
		if gvk.Group != "batch" || gvk.Kind != "Job" {
			return nil, nil, fmt.Errorf(`input "manifests": %s %s has annotation %s, but only a Job (batch/v1) can be a hook`, o.GetKind(), key(o), AnnotationHook)
		}
		if !slices.Contains(hookPoints, point) {
			return nil, nil, fmt.Errorf(`input "manifests": Job %s: %s is %q: use %s`, key(o), AnnotationHook, point, strings.Join(hookPoints, ", "))
		}
		hooks[point] = append(hooks[point], o)
	}
	return rest, hooks, nil
}

// hookJobName gives a hook Job a name of this run's own: a Job's pod
// template cannot change, so a migration Job applied again with a new
// image would be refused. The suffix is the digest's start and a random
// part; the whole stays within 63 characters (the job-name label).
func (d *deployer) hookJobName(base string) string {
	if d.hookSuffix == "" {
		b := make([]byte, 3)
		rand.Read(b)
		dg := strings.TrimPrefix(d.digest.DigestStr(), "sha256:")
		if len(dg) > 8 {
			dg = dg[:8]
		}
		d.hookSuffix = strings.Trim(dg+"-"+hex.EncodeToString(b), "-")
	}
	if max := 63 - len(d.hookSuffix) - 1; len(base) > max {
		base = strings.TrimRight(base[:max], "-.")
	}
	return base + "-" + d.hookSuffix
}

// runHooks runs the hook Jobs of one point one after the other and stops
// at the first that fails.
func (d *deployer) runHooks(ctx context.Context, point string, jobs []*unstructured.Unstructured) error {
	if len(jobs) == 0 {
		return nil
	}
	end := d.log.Group(fmt.Sprintf("Running the %s hook(s): %d Job(s)", point, len(jobs)))
	defer end()
	for _, j := range jobs {
		r := d.runHook(ctx, point, j)
		d.hooks = append(d.hooks, r)
		if r.err != nil {
			return fmt.Errorf("%s hook Job %s/%s (%s in the manifests): %w", point, j.GetNamespace(), r.job, j.GetName(), r.err)
		}
	}
	return nil
}

func (d *deployer) runHook(ctx context.Context, point string, tmpl *unstructured.Unstructured) hookRun {
	start := time.Now()
	job := tmpl.DeepCopy()
	name := d.hookJobName(tmpl.GetName())
	job.SetName(name)
	lbl := job.GetLabels()
	if lbl == nil {
		lbl = map[string]string{}
	}
	lbl[LabelHook], lbl[LabelHookName] = point, truncate(tmpl.GetName(), 63)
	job.SetLabels(lbl)
	ann := job.GetAnnotations()
	ann[AnnotationDigest] = d.digest.DigestStr()
	ann[AnnotationEnv] = d.in.Environment
	if d.in.Git.RunURL != "" {
		ann[AnnotationRunURL] = d.in.Git.RunURL
	}
	job.SetAnnotations(ann)
	r := hookRun{point: point, name: tmpl.GetName(), job: name}
	if _, err := d.c.apply(ctx, job, false); err != nil {
		r.err, r.took = fmt.Errorf("creating it: %w", err), time.Since(start)
		return r
	}
	d.log.Infof("hook %s: Job %s/%s started", point, job.GetNamespace(), name)
	r.err, r.logs = d.waitJob(ctx, job.GetNamespace(), name)
	r.took = time.Since(start)
	if r.err == nil {
		d.log.Infof("hook %s: Job %s/%s completed in %s", point, job.GetNamespace(), name, r.took.Round(100*time.Millisecond))
	}
	return r
}

// waitJob waits for a Job to complete; it fails when the Job fails or one
// of its pods cannot start, with the last lines of the failed pod's log.
func (d *deployer) waitJob(ctx context.Context, ns, name string) (error, string) {
	for {
		j, err := d.c.typed.BatchV1().Jobs(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return fmt.Errorf("reading it: %w", err), ""
		}
		for _, c := range j.Status.Conditions {
			if c.Status != corev1.ConditionTrue {
				continue
			}
			switch c.Type {
			case batchv1.JobComplete, batchv1.JobSuccessCriteriaMet:
				return nil, ""
			case batchv1.JobFailed, batchv1.JobFailureTarget:
				pod, container, logs := d.failedJobPod(ctx, ns, name)
				msg := fmt.Sprintf("%s: %s", c.Reason, c.Message)
				if pod != "" {
					msg += fmt.Sprintf(" (pod %s, container %s)", pod, container)
				}
				return fmt.Errorf("failed: %s", msg), logs
			}
		}
		if pods, err := d.jobPods(ctx, ns, name); err == nil {
			if f := podFailure(pods); f != nil {
				f.Logs = d.c.logs(ctx, ns, f.Pod, strings.TrimSuffix(f.Container, " (init)"))
				return f, f.Logs
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("still running: %w", ctx.Err()), ""
		case <-time.After(d.in.Poll):
		}
	}
}

func (d *deployer) jobPods(ctx context.Context, ns, job string) ([]corev1.Pod, error) {
	list, err := d.c.typed.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: batchv1.JobNameLabel + "=" + job})
	if err != nil {
		return nil, err
	}
	return list.Items, nil
}

// failedJobPod names a failed pod of the Job, its failed container and
// the last lines of its log.
func (d *deployer) failedJobPod(ctx context.Context, ns, job string) (pod, container, logs string) {
	pods, err := d.jobPods(ctx, ns, job)
	if err != nil {
		return "", "", ""
	}
	for _, p := range pods {
		for _, s := range p.Status.ContainerStatuses {
			if t := s.State.Terminated; t != nil && t.ExitCode != 0 {
				return p.Name, fmt.Sprintf("%s (exit code %d)", s.Name, t.ExitCode), d.c.logs(ctx, ns, p.Name, s.Name)
			}
		}
	}
	return "", "", ""
}

// hooksSummary lists the hook Jobs this run ran, with the failed one's log.
func (d *deployer) hooksSummary() string {
	if len(d.hooks) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString("\n| hook | Job | result | took |\n|---|---|---|---|\n")
	for _, h := range d.hooks {
		result := "✅ completed"
		if h.err != nil {
			result = "❌ " + strings.ReplaceAll(h.err.Error(), "|", `\|`)
		}
		fmt.Fprintf(&b, "| %s | %s (%s) | %s | %s |\n", h.point, h.job, h.name, result, h.took.Round(100*time.Millisecond))
	}
	for _, h := range d.hooks {
		if h.err != nil && h.logs != "" {
			fmt.Fprintf(&b, "\n<details><summary>last log lines of hook Job %s</summary>\n\n```\n%s\n```\n</details>\n", h.job, h.logs)
		}
	}
	return b.String()
}
