package argocd

import (
	"context"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// InClusterServer is the destination that means "the cluster Argo CD runs
// in".
const InClusterServer = "https://kubernetes.default.svc"

// workloadResources are the kinds whose state explains an unhealthy
// Application: their conditions, and their pods' container states.
var workloadResources = map[string]string{
	"Deployment": "deployments", "StatefulSet": "statefulsets", "DaemonSet": "daemonsets",
}

// Unhealthy reads what the Application's status says, or else, when it
// deploys to the cluster this client reads (destination
// https://kubernetes.default.svc), the workloads it manages: their false
// conditions (ProgressDeadlineExceeded …) and their pods' waiting or
// failed containers (CrashLoopBackOff, ImagePullBackOff …).
func (k *KubeClient) Unhealthy(ctx context.Context, a *Application) []string {
	if out := a.UnhealthyResources(); len(out) > 0 {
		return out
	}
	if a.Spec.Destination.Server != InClusterServer && a.Spec.Destination.Name != "in-cluster" {
		return nil
	}
	var out []string
	for _, r := range a.Status.Resources {
		res, ok := workloadResources[r.Kind]
		if !ok || r.Group != "apps" {
			continue
		}
		u, err := k.dyn.Resource(schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: res}).Namespace(r.Namespace).Get(ctx, r.Name, metav1.GetOptions{})
		if err != nil {
			continue
		}
		var why []string
		conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
		for _, c := range conds {
			c, _ := c.(map[string]any)
			if c["status"] == "False" {
				why = append(why, fmt.Sprintf("%v: %v", c["reason"], c["message"]))
			}
		}
		why = append(why, k.podTrouble(ctx, u)...)
		if len(why) > 0 {
			out = append(out, fmt.Sprintf("%s %s: %s", r.Kind, qualified(r.Namespace, r.Name), oneLine(strings.Join(why, "; "))))
		}
	}
	return out
}

// podTrouble is the first few distinct container problems of a workload's
// pods.
func (k *KubeClient) podTrouble(ctx context.Context, u *unstructured.Unstructured) []string {
	labels, _, _ := unstructured.NestedStringMap(u.Object, "spec", "selector", "matchLabels")
	if len(labels) == 0 {
		return nil
	}
	var sel []string
	for k, v := range labels {
		sel = append(sel, k+"="+v)
	}
	list, err := k.dyn.Resource(schema.GroupVersionResource{Version: "v1", Resource: "pods"}).Namespace(u.GetNamespace()).List(ctx, metav1.ListOptions{LabelSelector: strings.Join(sel, ",")})
	if err != nil {
		return nil
	}
	seen := map[string]bool{}
	var out []string
	for _, item := range list.Items {
		var pod corev1.Pod
		if runtime.DefaultUnstructuredConverter.FromUnstructured(item.Object, &pod) != nil {
			continue
		}
		for _, cs := range pod.Status.ContainerStatuses {
			var s string
			switch {
			case cs.State.Waiting != nil && cs.State.Waiting.Reason != "" && cs.State.Waiting.Reason != "ContainerCreating":
				s = fmt.Sprintf("container %s %s", cs.Name, cs.State.Waiting.Reason)
				if cs.RestartCount > 0 {
					s += fmt.Sprintf(" (restarted %d times)", cs.RestartCount)
				}
			case cs.State.Terminated != nil && cs.State.Terminated.ExitCode != 0:
				s = fmt.Sprintf("container %s exited %d (%s)", cs.Name, cs.State.Terminated.ExitCode, cs.State.Terminated.Reason)
			}
			if s != "" && !seen[s] {
				seen[s] = true
				out = append(out, fmt.Sprintf("pod %s: %s", pod.Name, s))
			}
		}
		if len(out) >= 3 {
			break
		}
	}
	return out
}
