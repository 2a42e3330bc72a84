package k8stest

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"
)

func TestMain(m *testing.M) { Main(m) }

const revisionAnnotation = "deployment.kubernetes.io/revision"

// TestRollingUpdate: 3 replicas become available, and a new image rolls out
// through a second ReplicaSet at revision 2.
func TestRollingUpdate(t *testing.T) {
	t.Parallel()
	c := Start(t)
	ns := c.Namespace(t)
	cs := c.Clientset()
	ctx := t.Context()

	began := time.Now()
	d := createDeployment(t, cs, ns, "web", 3, "registry.example/web:v1", nil, 0)
	d = waitDeployment(t, cs, ns, d.Name, 20*time.Second, "3/3 available", func(d *appsv1.Deployment) bool {
		return rolledOut(d, 3)
	})
	t.Logf("3/3 available after %v", time.Since(began).Round(time.Millisecond))
	if got := d.Annotations[revisionAnnotation]; got != "1" {
		t.Errorf("revision = %q, want 1", got)
	}
	pods := podsOf(t, cs, ns, d)
	if len(pods) != 3 {
		t.Fatalf("%d pods, want 3", len(pods))
	}
	for _, p := range pods {
		if p.Spec.NodeName != NodeName || p.Status.Phase != corev1.PodRunning || !podReady(&p) || p.Status.PodIP == "" {
			t.Errorf("pod %s: node %q phase %s ready %v IP %q, want Running and Ready on %s with an IP",
				p.Name, p.Spec.NodeName, p.Status.Phase, podReady(&p), p.Status.PodIP, NodeName)
		}
	}

	began = time.Now()
	setImage(t, cs, ns, d.Name, "registry.example/web:v2", nil)
	d = waitDeployment(t, cs, ns, d.Name, 20*time.Second, "revision 2 rolled out", func(d *appsv1.Deployment) bool {
		return d.Annotations[revisionAnnotation] == "2" && rolledOut(d, 3)
	})
	t.Logf("rolling update done after %v", time.Since(began).Round(time.Millisecond))

	rss, err := cs.AppsV1().ReplicaSets(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
	if err != nil {
		t.Fatal(err)
	}
	if len(rss.Items) != 2 {
		t.Fatalf("%d ReplicaSets, want 2 (one per revision)", len(rss.Items))
	}
	for _, rs := range rss.Items {
		img := rs.Spec.Template.Spec.Containers[0].Image
		switch rs.Annotations[revisionAnnotation] {
		case "1":
			if img != "registry.example/web:v1" || *rs.Spec.Replicas != 0 {
				t.Errorf("old ReplicaSet %s: image %s, %d replicas; want v1 scaled to 0", rs.Name, img, *rs.Spec.Replicas)
			}
		case "2":
			if img != "registry.example/web:v2" || rs.Status.AvailableReplicas != 3 {
				t.Errorf("new ReplicaSet %s: image %s, %d available; want v2 with 3", rs.Name, img, rs.Status.AvailableReplicas)
			}
		default:
			t.Errorf("ReplicaSet %s has revision %q", rs.Name, rs.Annotations[revisionAnnotation])
		}
	}
}

// TestFaults: a rollout to a faulty pod template leaves the new
// ReplicaSet's pods failing the way a kubelet reports it, selected by
// annotation or by image name, while the old pods keep serving.
func TestFaults(t *testing.T) {
	t.Parallel()
	c := Start(t)
	for _, tc := range []struct {
		name        string
		image       string
		annotations map[string]string
		// check must hold for every pod of the new ReplicaSet, then finally.
		check, finally func(*corev1.Pod, corev1.ContainerStatus) error
	}{
		{"crashloop-annotation", "registry.example/api:v2", map[string]string{FaultAnnotation: FaultCrashLoop}, crashLooping, crashLooping},
		{"crashloop-image", "registry.example/crashloop:v2", nil, crashLooping, crashLooping},
		{"imagepull-annotation", "registry.example/api:v2", map[string]string{FaultAnnotation: FaultImagePull}, pullFailing, pullBackingOff},
		{"imagepull-image", "registry.example/does-not-exist:v2", nil, pullFailing, pullBackingOff},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ns := c.Namespace(t)
			cs := c.Clientset()
			d := createDeployment(t, cs, ns, "api", 2, "registry.example/api:v1", nil, 0)
			waitDeployment(t, cs, ns, d.Name, 20*time.Second, "2/2 available", func(d *appsv1.Deployment) bool {
				return rolledOut(d, 2)
			})
			setImage(t, cs, ns, d.Name, tc.image, tc.annotations)

			for _, check := range []func(*corev1.Pod, corev1.ContainerStatus) error{tc.check, tc.finally} {
				var last string
				waitFor(t, 20*time.Second, func() (bool, string) {
					pods := podsOfRevision(t, cs, ns, "app=api", "2")
					if len(pods) == 0 {
						return false, "no pods of revision 2 yet"
					}
					for _, p := range pods {
						if len(p.Status.ContainerStatuses) != 1 {
							return false, fmt.Sprintf("pod %s: no container status yet (phase %s)", p.Name, p.Status.Phase)
						}
						if err := check(&p, p.Status.ContainerStatuses[0]); err != nil {
							return false, fmt.Sprintf("pod %s: %v", p.Name, err)
						}
						last = fmt.Sprintf("pod %s: phase %s, %s", p.Name, p.Status.Phase, describeState(p.Status.ContainerStatuses[0]))
					}
					return true, ""
				})
				t.Log(last)
			}

			// The old pods keep serving; the faulty ones never become available.
			waitDeployment(t, cs, ns, d.Name, 10*time.Second, "2 old pods available, new ones unavailable", func(d *appsv1.Deployment) bool {
				s := d.Status
				return s.AvailableReplicas == 2 && s.UpdatedReplicas >= 1 && s.UnavailableReplicas >= 1
			})
		})
	}
}

// TestProgressDeadlineExceeded: with progressDeadlineSeconds 10, a rollout
// to crash-looping pods ends in Progressing=False, ProgressDeadlineExceeded.
func TestProgressDeadlineExceeded(t *testing.T) {
	t.Parallel()
	c := Start(t)
	ns := c.Namespace(t)
	cs := c.Clientset()

	d := createDeployment(t, cs, ns, "worker", 2, "registry.example/worker:v1", nil, 10)
	waitDeployment(t, cs, ns, d.Name, 20*time.Second, "2/2 available", func(d *appsv1.Deployment) bool {
		return rolledOut(d, 2)
	})
	began := time.Now()
	setImage(t, cs, ns, d.Name, "registry.example/worker:v2", map[string]string{FaultAnnotation: FaultCrashLoop})
	d = waitDeployment(t, cs, ns, d.Name, 45*time.Second, "Progressing=False ProgressDeadlineExceeded", func(d *appsv1.Deployment) bool {
		cond := condition(d, appsv1.DeploymentProgressing)
		return cond != nil && cond.Status == corev1.ConditionFalse && cond.Reason == "ProgressDeadlineExceeded"
	})
	cond := condition(d, appsv1.DeploymentProgressing)
	t.Logf("ProgressDeadlineExceeded after %v: %s", time.Since(began).Round(time.Millisecond), cond.Message)
	if d.Status.AvailableReplicas != 2 {
		t.Errorf("%d available replicas, want the 2 old ones", d.Status.AvailableReplicas)
	}
}

// TestMissingBinaries: a missing binary is an error that says what to do.
func TestMissingBinaries(t *testing.T) {
	_, err := New(t.Context(), Options{BinDir: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "run `make k8s` or set GANTRY_K8S_BIN") {
		t.Fatalf("New with an empty BinDir: %v; want an error saying run `make k8s` or set GANTRY_K8S_BIN", err)
	}
}

func TestNamespacePrefix(t *testing.T) {
	for in, want := range map[string]string{
		"TestFaults/crashloop-image": "testfaults-crashloop-image-",
		"Test_X__Y":                  "test-x-y-",
		"///":                        "test-",
		strings.Repeat("a", 80):      strings.Repeat("a", 50) + "-",
	} {
		if got := namespacePrefix(in); got != want {
			t.Errorf("namespacePrefix(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestResources reports what the shared control plane costs (start-up time
// and memory); it checks only that every component is running.
func TestResources(t *testing.T) {
	c := Start(t)
	if runtime.GOOS != "linux" {
		t.Logf("start-up %v", c.StartupTime.Round(time.Millisecond))
		return
	}
	var total int
	var parts []string
	for name, pid := range c.PIDs() {
		kb := rssKB(pid)
		if kb == 0 {
			t.Errorf("%s (pid %d) is not running", name, pid)
		}
		total += kb
		parts = append(parts, fmt.Sprintf("%s %d MiB", name, kb/1024))
	}
	t.Logf("start-up %v; RSS %d MiB (%s)", c.StartupTime.Round(time.Millisecond), total/1024, strings.Join(parts, ", "))
}

func rssKB(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(b)) {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			n, _ := strconv.Atoi(f[1])
			return n
		}
	}
	return 0
}

func createDeployment(t *testing.T, cs kubernetes.Interface, ns, name string, replicas int32, image string, annotations map[string]string, progressDeadline int32) *appsv1.Deployment {
	t.Helper()
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": name}, Annotations: annotations},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name:  name,
					Image: image,
					Ports: []corev1.ContainerPort{{ContainerPort: 8080}},
				}}},
			},
		},
	}
	if progressDeadline > 0 {
		d.Spec.ProgressDeadlineSeconds = &progressDeadline
	}
	d, err := cs.AppsV1().Deployments(ns).Create(t.Context(), d, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating deployment %s/%s: %v", ns, name, err)
	}
	return d
}

// setImage changes the pod template's image and annotations: a new revision.
func setImage(t *testing.T, cs kubernetes.Interface, ns, name, image string, annotations map[string]string) {
	t.Helper()
	d, err := cs.AppsV1().Deployments(ns).Get(t.Context(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	d.Spec.Template.Spec.Containers[0].Image = image
	d.Spec.Template.Annotations = annotations
	if _, err := cs.AppsV1().Deployments(ns).Update(t.Context(), d, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("updating deployment %s/%s: %v", ns, name, err)
	}
}

func waitDeployment(t *testing.T, cs kubernetes.Interface, ns, name string, timeout time.Duration, what string, done func(*appsv1.Deployment) bool) *appsv1.Deployment {
	t.Helper()
	var d *appsv1.Deployment
	waitFor(t, timeout, func() (bool, string) {
		var err error
		d, err = cs.AppsV1().Deployments(ns).Get(t.Context(), name, metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		if d.Status.ObservedGeneration == d.Generation && done(d) {
			return true, ""
		}
		return false, fmt.Sprintf("waiting for %s: generation %d, status %+v", what, d.Generation, d.Status)
	})
	return d
}

// rolledOut: the controller has seen the latest spec and all replicas run
// the latest template and are available.
func rolledOut(d *appsv1.Deployment, n int32) bool {
	s := d.Status
	return s.Replicas == n && s.UpdatedReplicas == n && s.ReadyReplicas == n && s.AvailableReplicas == n
}

func condition(d *appsv1.Deployment, typ appsv1.DeploymentConditionType) *appsv1.DeploymentCondition {
	for i := range d.Status.Conditions {
		if d.Status.Conditions[i].Type == typ {
			return &d.Status.Conditions[i]
		}
	}
	return nil
}

func podsOf(t *testing.T, cs kubernetes.Interface, ns string, d *appsv1.Deployment) []corev1.Pod {
	t.Helper()
	sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	if err != nil {
		t.Fatal(err)
	}
	pods, err := cs.CoreV1().Pods(ns).List(t.Context(), metav1.ListOptions{LabelSelector: sel.String()})
	if err != nil {
		t.Fatal(err)
	}
	return pods.Items
}

// podsOfRevision lists the pods of the ReplicaSet with the given revision.
func podsOfRevision(t *testing.T, cs kubernetes.Interface, ns, selector, revision string) []corev1.Pod {
	t.Helper()
	rss, err := cs.AppsV1().ReplicaSets(ns).List(t.Context(), metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		t.Fatal(err)
	}
	for _, rs := range rss.Items {
		if rs.Annotations[revisionAnnotation] != revision {
			continue
		}
		hash := rs.Labels[appsv1.DefaultDeploymentUniqueLabelKey]
		sel := labels.Set{appsv1.DefaultDeploymentUniqueLabelKey: hash}.String()
		pods, err := cs.CoreV1().Pods(ns).List(t.Context(), metav1.ListOptions{LabelSelector: sel})
		if err != nil {
			t.Fatal(err)
		}
		return pods.Items
	}
	return nil
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func crashLooping(p *corev1.Pod, s corev1.ContainerStatus) error {
	switch {
	case s.State.Waiting == nil || s.State.Waiting.Reason != "CrashLoopBackOff":
		return fmt.Errorf("container %s, want waiting CrashLoopBackOff", describeState(s))
	case s.RestartCount < 1:
		return fmt.Errorf("restartCount %d, want > 0", s.RestartCount)
	case s.LastTerminationState.Terminated == nil || s.LastTerminationState.Terminated.ExitCode != 1:
		return fmt.Errorf("last state %+v, want terminated with exit code 1", s.LastTerminationState)
	case s.Ready || podReady(p):
		return fmt.Errorf("ready, want not ready")
	case p.Status.Phase != corev1.PodRunning:
		return fmt.Errorf("phase %s, want Running", p.Status.Phase)
	}
	return nil
}

func pullFailing(p *corev1.Pod, s corev1.ContainerStatus) error {
	switch {
	case s.State.Waiting == nil || (s.State.Waiting.Reason != "ImagePullBackOff" && s.State.Waiting.Reason != "ErrImagePull"):
		return fmt.Errorf("container %s, want waiting ImagePullBackOff or ErrImagePull", describeState(s))
	case s.Ready || podReady(p):
		return fmt.Errorf("ready, want not ready")
	case p.Status.Phase != corev1.PodPending:
		return fmt.Errorf("phase %s, want Pending", p.Status.Phase)
	}
	return nil
}

// pullBackingOff: pullFailing, past ErrImagePull.
func pullBackingOff(p *corev1.Pod, s corev1.ContainerStatus) error {
	if err := pullFailing(p, s); err != nil {
		return err
	}
	if s.State.Waiting.Reason != "ImagePullBackOff" {
		return fmt.Errorf("container %s, want waiting ImagePullBackOff", describeState(s))
	}
	return nil
}

func describeState(s corev1.ContainerStatus) string {
	switch {
	case s.State.Waiting != nil:
		return fmt.Sprintf("waiting %s (%s), restarts %d", s.State.Waiting.Reason, s.State.Waiting.Message, s.RestartCount)
	case s.State.Running != nil:
		return fmt.Sprintf("running, ready %v, restarts %d", s.Ready, s.RestartCount)
	case s.State.Terminated != nil:
		return fmt.Sprintf("terminated %s (exit %d)", s.State.Terminated.Reason, s.State.Terminated.ExitCode)
	}
	return "no state"
}

// waitFor polls cond every 50 ms until it holds; on timeout the test fails
// with cond's last description of what it is waiting for.
func waitFor(t *testing.T, timeout time.Duration, cond func() (bool, string)) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	defer cancel()
	for {
		ok, state := cond()
		if ok {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("after %v: %s", timeout, state)
		case <-time.After(50 * time.Millisecond):
		}
	}
}
