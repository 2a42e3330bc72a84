package manifests

import (
	"fmt"
	"slices"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// Change is one container image PinImage replaced.
type Change struct {
	Kind      string // the object's kind, such as Deployment
	Namespace string // empty until SetNamespace or the manifests set one
	Name      string
	Container string // the container's name; init containers too
	Before    string // the image as the manifests had it
	After     string // the digest reference
}

func (c Change) String() string {
	id := c.Kind + "/" + c.Name
	if c.Namespace != "" {
		id = c.Namespace + " " + id
	}
	return fmt.Sprintf("%s container %s: %s → %s", id, c.Container, c.Before, c.After)
}

// podSpecPath says where an object kind keeps its pod spec.
var podSpecPath = map[string][]string{
	"apps/Deployment":        {"spec", "template", "spec"},
	"apps/StatefulSet":       {"spec", "template", "spec"},
	"apps/DaemonSet":         {"spec", "template", "spec"},
	"apps/ReplicaSet":        {"spec", "template", "spec"},
	"batch/Job":              {"spec", "template", "spec"},
	"batch/CronJob":          {"spec", "jobTemplate", "spec", "template", "spec"},
	"/ReplicationController": {"spec", "template", "spec"},
	"/Pod":                   {"spec"},
	// An Argo Rollouts Rollout with its own template (one with a
	// workloadRef has none: its Deployment's is pinned).
	"argoproj.io/Rollout": {"spec", "template", "spec"},
}

// containerFields are the pod spec's container lists PinImage looks in.
// Ephemeral containers are left out: they are added to running pods by
// kubectl debug, never written in a template.
var containerFields = []string{"initContainers", "containers"}

// PinImage sets every container image in objs's pod templates whose
// repository is ref's to ref, so that the cluster runs exactly the image that
// was built, scanned and signed. ref must be a digest reference
// (repo@sha256:…). An image matches whatever its tag or digest, and
// repositories are compared as a registry would resolve them: "nginx" is
// docker.io/library/nginx and registry host names ignore case.
//
// PinImage changes objs in place and returns the images it replaced; an
// image already equal to ref matches without being listed. It is an error
// for no image to match: a typo in "image" or in the manifests would
// otherwise deploy the old image and report success.
func PinImage(objs []*unstructured.Unstructured, ref string) ([]Change, error) {
	want, err := parseDigest(ref)
	if err != nil {
		return nil, err
	}
	ref = strings.TrimSpace(ref)

	var changes []Change
	var used []string
	matched := false
	for _, o := range objs {
		gvk := o.GroupVersionKind()
		path, ok := podSpecPath[gvk.Group+"/"+gvk.Kind]
		if !ok {
			continue
		}
		for _, field := range containerFields {
			fpath := append(slices.Clone(path), field)
			cs, found, err := unstructured.NestedSlice(o.Object, fpath...)
			if err != nil {
				return nil, fmt.Errorf(`input "manifests": %s: %s: %w`, describe(o), strings.Join(fpath, "."), err)
			}
			if !found {
				continue
			}
			changed := false
			for i, c := range cs {
				cm, ok := c.(map[string]any)
				if !ok {
					return nil, fmt.Errorf(`input "manifests": %s: %s[%d] is not an object`, describe(o), strings.Join(fpath, "."), i)
				}
				image, _ := cm["image"].(string)
				if image == "" {
					continue
				}
				used = append(used, image)
				if !sameRepository(image, want.Context()) {
					continue
				}
				matched = true
				if image == ref {
					continue
				}
				cname, _ := cm["name"].(string)
				cm["image"] = ref
				changed = true
				changes = append(changes, Change{
					Kind:      gvk.Kind,
					Namespace: o.GetNamespace(),
					Name:      o.GetName(),
					Container: cname,
					Before:    image,
					After:     ref,
				})
			}
			if changed {
				if err := unstructured.SetNestedSlice(o.Object, cs, fpath...); err != nil {
					return nil, fmt.Errorf("%s: setting %s: %w", describe(o), strings.Join(fpath, "."), err)
				}
			}
		}
	}
	if !matched {
		return nil, noMatchError(ref, used)
	}
	return changes, nil
}

// parseDigest accepts only a digest reference: a tag can move between the
// build and the deploy, and the deploy must run what was built.
func parseDigest(ref string) (name.Digest, error) {
	ref = strings.TrimSpace(ref)
	if ref == "" {
		return name.Digest{}, fmt.Errorf(`input "image" is empty; set it to the build stage's "image" output (repo@sha256:…)`)
	}
	if !strings.Contains(ref, "@") {
		if _, err := name.NewTag(ref); err == nil {
			return name.Digest{}, fmt.Errorf(`input "image" must be a digest reference (repo@sha256:…), not %q: a tag can move between build and deploy; pass the build stage's "image" output, or resolve the tag once with "crane digest"`, ref)
		}
	}
	d, err := name.NewDigest(ref)
	if err != nil {
		return name.Digest{}, fmt.Errorf(`input "image" must be a digest reference (repo@sha256:…), not %q: %w`, ref, err)
	}
	return d, nil
}

// sameRepository reports whether image names repo. Images the reference
// grammar rejects (an unexpanded "$(IMAGE)", say) match nothing.
func sameRepository(image string, repo name.Repository) bool {
	r, err := name.ParseReference(image)
	if err != nil {
		return false
	}
	c := r.Context()
	return strings.EqualFold(c.RegistryStr(), repo.RegistryStr()) && c.RepositoryStr() == repo.RepositoryStr()
}

func noMatchError(ref string, used []string) error {
	slices.Sort(used)
	used = slices.Compact(used)
	if len(used) == 0 {
		return fmt.Errorf(`input "manifests": no container image to set to %s: the manifests have no Deployment, StatefulSet, DaemonSet, ReplicaSet, Job, CronJob or Pod with an image; point "manifests" at the application's manifests`, ref)
	}
	r := repoAsWritten(ref)
	return fmt.Errorf(`input "image": no container in the manifests uses %s (from %s); they use %s; set "image" to a digest of one of those repositories, or change the manifests' image to %s`,
		r, ref, strings.Join(used, ", "), r)
}

// repoAsWritten strips ref's digest and tag, keeping the repository as the
// user wrote it (ggcr's Name() would spell "nginx" index.docker.io/library/nginx).
func repoAsWritten(ref string) string {
	r, _, _ := strings.Cut(ref, "@")
	if i := strings.LastIndex(r, ":"); i > strings.LastIndex(r, "/") {
		r = r[:i]
	}
	return r
}
