package rollout

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func TestPickRelease(t *testing.T) {
	img := func(c string) string { return "r@sha256:" + strings.Repeat(c, 64) }
	history := []*Release{ // newest first, as releases returns it
		{Revision: 5, Status: ReleaseRolledBack, Image: img("e")},
		{Revision: 4, Status: ReleaseDeployed, Image: img("d")},
		{Revision: 3, Status: ReleaseFailed, Image: img("c")},
		{Revision: 2, Status: ReleaseSuperseded, Image: img("b")},
		{Revision: 1, Status: ReleaseSuperseded, Image: img("a")},
	}
	for _, tc := range []struct{ to, want, err string }{
		{"previous", "2", ""}, // 3 failed: skipped
		{"revision:1", "1", ""},
		{"revision:4", "4", ""},
		{"revision:3", "", "release 3 (failed, sha256:ccc"},
		{"revision:9", "", "no release 9 in the history (history: release 5 (rolled-back"},
		{"digest:sha256:" + strings.Repeat("b", 64), "2", ""},
		{"digest:sha256:" + strings.Repeat("e", 64), "", "no deployed release of sha256:eee"},
	} {
		to, err := ParseRollbackTarget(tc.to)
		if err != nil {
			t.Fatal(err)
		}
		r, err := pickRelease(history, to)
		switch {
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%s: %v, want an error with %q", tc.to, err, tc.err)
		case tc.err == "" && (err != nil || r == nil || strings.TrimPrefix(r.String(), "release ")[:1] != tc.want):
			t.Errorf("%s: %v %v, want release %s", tc.to, r, err, tc.want)
		}
	}
	// Only one release, deployed: no previous.
	if _, err := pickRelease(history[1:2], RollbackTarget{Kind: "previous"}); err == nil || !strings.Contains(err.Error(), "no release before the current one") {
		t.Errorf("previous of a single release: %v", err)
	}
}

func TestPruneList(t *testing.T) {
	obj := func(apiVersion, kind, ns, name string) *unstructured.Unstructured {
		return ObjectRef{APIVersion: apiVersion, Kind: kind, Namespace: ns, Name: name}.object()
	}
	prev := &Release{Revision: 3, Objects: []ObjectRef{
		{APIVersion: "v1", Kind: "Namespace", Name: "shop"},
		{APIVersion: "apiextensions.k8s.io/v1", Kind: "CustomResourceDefinition", Name: "widgets.acme.io"},
		{APIVersion: "apps/v1", Kind: "Deployment", Namespace: "shop", Name: "api"},
		{APIVersion: "autoscaling/v1", Kind: "HorizontalPodAutoscaler", Namespace: "shop", Name: "api"},
		{APIVersion: "v1", Kind: "ConfigMap", Namespace: "shop", Name: "flags"},
		{APIVersion: "v1", Kind: "ConfigMap", Namespace: "other", Name: "api"},
	}}
	objs := []*unstructured.Unstructured{
		obj("apps/v1", "Deployment", "shop", "api"),
		obj("autoscaling/v2", "HorizontalPodAutoscaler", "shop", "api"), // same object, newer version
		obj("v1", "ConfigMap", "shop", "api"),
	}
	prune, kept := pruneList(prev, objs)
	var got, keep []string
	for _, r := range prune {
		got = append(got, r.String())
	}
	for _, r := range kept {
		keep = append(keep, r.String())
	}
	if strings.Join(got, "; ") != "ConfigMap shop/flags; ConfigMap other/api" {
		t.Errorf("pruned %q", got)
	}
	if strings.Join(keep, "; ") != "Namespace shop; CustomResourceDefinition widgets.acme.io" {
		t.Errorf("kept %q", keep)
	}
	if p, k := pruneList(nil, objs); p != nil || k != nil {
		t.Errorf("no deployed release: prune %v keep %v", p, k)
	}
}
