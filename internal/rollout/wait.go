package rollout

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/gantry-ci/gantry/internal/ghaction"
)

// Failure is why a rollout cannot succeed, found before its deadline.
type Failure struct {
	Reason    string // CrashLoopBackOff, ImagePullBackOff, ProgressDeadlineExceeded ...
	Pod       string
	Container string
	Message   string
	Logs      string // last lines of the container's log, when the node serves them
}

func (f *Failure) Error() string {
	var b strings.Builder
	b.WriteString(f.Reason)
	if f.Pod != "" {
		fmt.Fprintf(&b, " in pod %s", f.Pod)
		if f.Container != "" {
			fmt.Fprintf(&b, ", container %s", f.Container)
		}
	}
	if f.Message != "" {
		b.WriteString(": " + f.Message)
	}
	return b.String()
}

// waitingFailures are container states a kubelet reports when a container
// will not come up without a new pod template.
var waitingFailures = map[string]bool{
	"CrashLoopBackOff":           true,
	"ImagePullBackOff":           true,
	"ErrImagePull":               true,
	"InvalidImageName":           true,
	"CreateContainerConfigError": true,
	"CreateContainerError":       true,
	"RunContainerError":          true,
}

// podFailure looks for a failing container in pods of the new revision.
func podFailure(pods []corev1.Pod) *Failure {
	for _, p := range pods {
		for _, s := range p.Status.InitContainerStatuses {
			if w := s.State.Waiting; w != nil && waitingFailures[w.Reason] {
				return &Failure{Reason: w.Reason, Pod: p.Name, Container: s.Name + " (init)", Message: w.Message}
			}
			if t := s.State.Terminated; t != nil && t.ExitCode != 0 {
				return &Failure{Reason: "InitContainerFailed", Pod: p.Name, Container: s.Name, Message: fmt.Sprintf("exit code %d %s", t.ExitCode, t.Reason)}
			}
		}
		for _, s := range p.Status.ContainerStatuses {
			if w := s.State.Waiting; w != nil && waitingFailures[w.Reason] {
				msg := w.Message
				if t := s.LastTerminationState.Terminated; t != nil {
					msg = strings.TrimSpace(fmt.Sprintf("%s (last exit code %d, %d restarts)", msg, t.ExitCode, s.RestartCount))
				}
				return &Failure{Reason: w.Reason, Pod: p.Name, Container: s.Name, Message: msg}
			}
		}
	}
	return nil
}

// Progress is a Deployment's rollout state.
type Progress struct {
	Desired, Updated, Ready, Available int32
}

func progressOf(d *appsv1.Deployment) Progress {
	desired := int32(1)
	if d.Spec.Replicas != nil {
		desired = *d.Spec.Replicas
	}
	return Progress{Desired: desired, Updated: d.Status.UpdatedReplicas, Ready: d.Status.ReadyReplicas, Available: d.Status.AvailableReplicas}
}

// complete is kubectl rollout status's definition of done.
func complete(d *appsv1.Deployment) bool {
	p := progressOf(d)
	return d.Status.ObservedGeneration >= d.Generation &&
		d.Status.UpdatedReplicas == p.Desired &&
		d.Status.Replicas == d.Status.UpdatedReplicas &&
		d.Status.AvailableReplicas == d.Status.UpdatedReplicas
}

// waitRollout waits until the Deployment's rollout completes, failing fast
// when its new pods cannot start or the progress deadline passes.
func (c *cluster) waitRollout(ctx context.Context, log ghaction.Logger, ns, name string, poll time.Duration) (*appsv1.Deployment, error) {
	var last Progress
	for {
		d, done, err := c.deploymentStep(ctx, log, ns, name, &last)
		if done || err != nil {
			return d, err
		}
		select {
		case <-ctx.Done():
			return d, fmt.Errorf("waiting for %s/%s (%d/%d updated, %d available): %w", ns, name, last.Updated, last.Desired, last.Available, ctx.Err())
		case <-time.After(poll):
		}
	}
}

// deploymentStep reads a Deployment once: done when its rollout is
// complete, a Failure when its new pods cannot start or the progress
// deadline passed. Progress is logged when it changed since *last.
func (c *cluster) deploymentStep(ctx context.Context, log ghaction.Logger, ns, name string, last *Progress) (*appsv1.Deployment, bool, error) {
	d, err := c.typed.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, false, fmt.Errorf("reading deployment %s/%s: %w", ns, name, err)
	}
	if d.Status.ObservedGeneration < d.Generation {
		return d, false, nil
	}
	if p := progressOf(d); p != *last {
		log.Infof("Deployment %s/%s: %d/%d updated, %d ready, %d available", ns, name, p.Updated, p.Desired, p.Ready, p.Available)
		*last = p
	}
	if complete(d) {
		return d, true, nil
	}
	for _, cond := range d.Status.Conditions {
		if cond.Type == appsv1.DeploymentProgressing && cond.Status == corev1.ConditionFalse && cond.Reason == "ProgressDeadlineExceeded" {
			f := &Failure{Reason: "ProgressDeadlineExceeded", Message: cond.Message}
			c.explain(ctx, d, f)
			return d, false, f
		}
	}
	if rs, err := c.newReplicaSet(ctx, d); err == nil && rs != nil {
		if pods, err := c.podsOf(ctx, rs); err == nil {
			if f := podFailure(pods); f != nil {
				f.Logs = c.logs(ctx, ns, f.Pod, strings.TrimSuffix(f.Container, " (init)"))
				return d, false, f
			}
		}
	}
	return d, false, nil
}

// explain adds the first failing pod's reason to a deadline failure, so the
// report names a cause, not just a timeout.
func (c *cluster) explain(ctx context.Context, d *appsv1.Deployment, f *Failure) {
	rs, err := c.newReplicaSet(ctx, d)
	if err != nil || rs == nil {
		return
	}
	pods, err := c.podsOf(ctx, rs)
	if err != nil {
		return
	}
	if pf := podFailure(pods); pf != nil {
		f.Pod, f.Container = pf.Pod, pf.Container
		f.Message = strings.TrimSpace(f.Message + "; " + pf.Reason + ": " + pf.Message)
		return
	}
	for _, p := range pods {
		for _, cond := range p.Status.Conditions {
			if cond.Type == corev1.PodReady && cond.Status != corev1.ConditionTrue {
				f.Pod = p.Name
				f.Message = strings.TrimSpace(fmt.Sprintf("%s; pod %s not ready: %s %s", f.Message, p.Name, cond.Reason, cond.Message))
				return
			}
		}
	}
}

// logs returns the last lines of a container's previous (crashed) or
// current log; a node that does not serve logs gives "".
func (c *cluster) logs(ctx context.Context, ns, pod, container string) string {
	if pod == "" || container == "" {
		return ""
	}
	tail := int64(20)
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	for _, previous := range []bool{true, false} {
		rc, err := c.typed.CoreV1().Pods(ns).GetLogs(pod, &corev1.PodLogOptions{Container: container, TailLines: &tail, Previous: previous}).Stream(ctx)
		if err != nil {
			continue
		}
		b, err := io.ReadAll(io.LimitReader(rc, 16<<10))
		rc.Close()
		if err == nil && len(b) > 0 {
			return strings.TrimSpace(string(b))
		}
	}
	return ""
}

// asFailure unwraps a rollout Failure.
func asFailure(err error) (*Failure, bool) {
	var f *Failure
	return f, errors.As(err, &f)
}
