package rollout

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/util/retry"
)

const revisionAnnotation = "deployment.kubernetes.io/revision"

// Revision is one entry of a Deployment's history: a ReplicaSet the
// Deployment controller keeps (up to revisionHistoryLimit).
type Revision struct {
	Number  int64
	RS      *appsv1.ReplicaSet
	Images  []string // every container image of the template
	Digest  string   // sha256:... of the first image pinned by digest
	Current bool
}

func (r Revision) String() string {
	s := fmt.Sprintf("revision %d", r.Number)
	if r.Digest != "" {
		s += " (" + r.Digest + ")"
	} else if len(r.Images) > 0 {
		s += " (" + strings.Join(r.Images, ", ") + ")"
	}
	if r.Current {
		s += " [current]"
	}
	return s
}

func revisionOf(m metav1.Object) int64 {
	n, _ := strconv.ParseInt(m.GetAnnotations()[revisionAnnotation], 10, 64)
	return n
}

func images(t corev1.PodTemplateSpec) []string {
	var out []string
	for _, c := range t.Spec.InitContainers {
		out = append(out, c.Image)
	}
	for _, c := range t.Spec.Containers {
		out = append(out, c.Image)
	}
	return out
}

// digestOf returns the digest of the template's image from repo (any
// container when repo is empty).
func digestOf(t corev1.PodTemplateSpec, repo string) string {
	for _, c := range t.Spec.Containers {
		name, d, ok := strings.Cut(c.Image, "@")
		if ok && (repo == "" || sameRepo(name, repo)) {
			return d
		}
	}
	return ""
}

func sameRepo(a, b string) bool {
	strip := func(s string) string {
		s = strings.ToLower(s)
		if i := strings.LastIndex(s, "/"); strings.LastIndex(s, ":") > i {
			s = s[:strings.LastIndex(s, ":")]
		}
		return strings.TrimPrefix(strings.TrimPrefix(s, "docker.io/"), "index.docker.io/")
	}
	return strip(a) == strip(b)
}

// history lists the Deployment's revisions, newest first.
func (c *cluster) history(ctx context.Context, d *appsv1.Deployment, repo string) ([]Revision, error) {
	sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	if err != nil {
		return nil, err
	}
	list, err := c.typed.AppsV1().ReplicaSets(d.Namespace).List(ctx, metav1.ListOptions{LabelSelector: sel.String()})
	if err != nil {
		return nil, fmt.Errorf("listing the ReplicaSets of %s/%s: %w", d.Namespace, d.Name, err)
	}
	current := revisionOf(d)
	var revs []Revision
	for i := range list.Items {
		rs := &list.Items[i]
		if !metav1.IsControlledBy(rs, d) {
			continue
		}
		n := revisionOf(rs)
		revs = append(revs, Revision{Number: n, RS: rs, Images: images(rs.Spec.Template), Digest: digestOf(rs.Spec.Template, repo), Current: n == current})
	}
	sort.Slice(revs, func(i, j int) bool { return revs[i].Number > revs[j].Number })
	return revs, nil
}

// newReplicaSet returns the ReplicaSet of the Deployment's current revision.
func (c *cluster) newReplicaSet(ctx context.Context, d *appsv1.Deployment) (*appsv1.ReplicaSet, error) {
	revs, err := c.history(ctx, d, "")
	if err != nil {
		return nil, err
	}
	for _, r := range revs {
		if r.Current {
			return r.RS, nil
		}
	}
	return nil, nil
}

// RollbackTarget is what a rollback restores: "previous", "revision:N" or
// "digest:sha256:...".
type RollbackTarget struct {
	Kind  string // previous, revision, digest
	Value string
}

// ParseRollbackTarget parses the rollback-to input.
func ParseRollbackTarget(s string) (RollbackTarget, error) {
	s = strings.TrimSpace(s)
	switch {
	case s == "" || s == "previous":
		return RollbackTarget{Kind: "previous"}, nil
	case strings.HasPrefix(s, "revision:"):
		v := strings.TrimPrefix(s, "revision:")
		if n, err := strconv.ParseInt(v, 10, 64); err != nil || n < 1 {
			return RollbackTarget{}, fmt.Errorf(`input "rollback-to": %q: the revision must be a positive number, e.g. revision:3`, s)
		}
		return RollbackTarget{Kind: "revision", Value: v}, nil
	case strings.HasPrefix(s, "digest:"):
		v := strings.TrimPrefix(s, "digest:")
		if hex := strings.TrimPrefix(v, "sha256:"); !strings.HasPrefix(v, "sha256:") || len(hex) != 64 || strings.Trim(hex, "0123456789abcdef") != "" {
			return RollbackTarget{}, fmt.Errorf(`input "rollback-to": %q: write digest:sha256:<64 hex digits>`, s)
		}
		return RollbackTarget{Kind: "digest", Value: v}, nil
	}
	return RollbackTarget{}, fmt.Errorf(`input "rollback-to": %q: use previous, revision:N or digest:sha256:…`, s)
}

// pick finds the target revision, or explains which revisions exist.
func pick(revs []Revision, t RollbackTarget) (Revision, error) {
	var current int64
	for _, r := range revs {
		if r.Current {
			current = r.Number
		}
	}
	for _, r := range revs {
		switch t.Kind {
		case "previous":
			if r.Number < current && r.Number > 0 {
				return r, nil // revs are newest first
			}
		case "revision":
			if strconv.FormatInt(r.Number, 10) == t.Value {
				return r, nil
			}
		case "digest":
			if r.Digest == t.Value {
				return r, nil
			}
		}
	}
	var have []string
	for _, r := range revs {
		have = append(have, r.String())
	}
	what := map[string]string{"previous": "no revision before the current one", "revision": "revision " + t.Value + " is gone", "digest": "no kept revision ran " + t.Value}[t.Kind]
	return Revision{}, fmt.Errorf(`cannot roll back: %s (the Deployment keeps revisionHistoryLimit revisions). Available: %s`, what, strings.Join(have, "; "))
}

// undo puts the target revision's pod template back into the Deployment,
// as kubectl rollout undo does; the controller then scales that
// ReplicaSet up again and gives it the next revision number.
func (c *cluster) undo(ctx context.Context, d *appsv1.Deployment, to Revision, annotations map[string]string) (*appsv1.Deployment, error) {
	var out *appsv1.Deployment
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cur, err := c.typed.AppsV1().Deployments(d.Namespace).Get(ctx, d.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		tmpl := *to.RS.Spec.Template.DeepCopy()
		delete(tmpl.Labels, appsv1.DefaultDeploymentUniqueLabelKey)
		cur.Spec.Template = tmpl
		if cur.Annotations == nil {
			cur.Annotations = map[string]string{}
		}
		for k, v := range annotations {
			cur.Annotations[k] = v
		}
		out, err = c.typed.AppsV1().Deployments(d.Namespace).Update(ctx, cur, metav1.UpdateOptions{FieldManager: FieldManager})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("rolling %s/%s back to %s: %w", d.Namespace, d.Name, to, err)
	}
	return out, nil
}

// podsOf lists the pods of a ReplicaSet.
func (c *cluster) podsOf(ctx context.Context, rs *appsv1.ReplicaSet) ([]corev1.Pod, error) {
	sel := labels.SelectorFromSet(labels.Set{appsv1.DefaultDeploymentUniqueLabelKey: rs.Labels[appsv1.DefaultDeploymentUniqueLabelKey]})
	list, err := c.typed.CoreV1().Pods(rs.Namespace).List(ctx, metav1.ListOptions{LabelSelector: sel.String()})
	if err != nil {
		return nil, err
	}
	var out []corev1.Pod
	for _, p := range list.Items {
		if metav1.IsControlledBy(&p, rs) {
			out = append(out, p)
		}
	}
	return out, nil
}
