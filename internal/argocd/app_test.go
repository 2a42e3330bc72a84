package argocd

import (
	"encoding/json"
	"strings"
	"testing"
)

func app(t *testing.T, js string) *Application {
	t.Helper()
	var a Application
	if err := json.Unmarshal([]byte(js), &a); err != nil {
		t.Fatal(err)
	}
	return &a
}

const commit = "1111111111111111111111111111111111111111"
const other = "2222222222222222222222222222222222222222"
const image = "registry.example/app@sha256:aaaa"

// Runs, SyncFailed and DegradedAt are what Wait decides on: a unit table over the states
// Argo CD reports (the real controller is in the deploy stage's tests).
func TestRunsAndFailed(t *testing.T) {
	for _, c := range []struct {
		name   string
		status string
		runs   bool
		failed string
	}{
		{"synced healthy at the commit", `{"sync":{"status":"Synced","revision":"` + commit + `"},"health":{"status":"Healthy"}}`, true, ""},
		{"synced healthy at another commit", `{"sync":{"status":"Synced","revision":"` + other + `"},"health":{"status":"Healthy"}}`, false, ""},
		{"a later commit that runs the image", `{"sync":{"status":"Synced","revision":"` + other + `"},"health":{"status":"Healthy"},"summary":{"images":["` + image + `"]}}`, true, ""},
		{"out of sync", `{"sync":{"status":"OutOfSync","revision":"` + commit + `"},"health":{"status":"Healthy"}}`, false, ""},
		{"progressing", `{"sync":{"status":"Synced","revision":"` + commit + `"},"health":{"status":"Progressing"}}`, false, ""},
		{"operation still running", `{"sync":{"status":"Synced","revision":"` + commit + `"},"health":{"status":"Healthy"},"operationState":{"phase":"Running"}}`, false, ""},
		{"degraded at the commit", `{"sync":{"status":"Synced","revision":"` + commit + `"},"health":{"status":"Degraded"},"resources":[{"kind":"Deployment","namespace":"web","name":"api","health":{"status":"Degraded","message":"Deployment \"api\" exceeded its progress deadline"}}]}`, false, `Degraded at 111111111111: Deployment web/api: Degraded (Deployment "api" exceeded its progress deadline)`},
		{"degraded, compared with the commit but the comparison failed", `{"sync":{"status":"Unknown","revision":"` + commit + `"},"health":{"status":"Degraded"},"conditions":[{"type":"ComparisonError","message":"rpc error"}]}`, false, ""},
		{"degraded at the old commit", `{"sync":{"status":"OutOfSync","revision":"` + other + `"},"health":{"status":"Degraded"}}`, false, ""},
		{"sync of the commit failed", `{"sync":{"status":"OutOfSync","revision":"` + commit + `"},"health":{"status":"Healthy"},"operationState":{"phase":"Failed","message":"one or more objects failed to apply","syncResult":{"revision":"` + commit + `","resources":[{"kind":"Deployment","name":"api","status":"SyncFailed","message":"admission webhook denied"}]}}}`, false, "sync of 111111111111 failed: one or more objects failed to apply; Deployment/api SyncFailed: admission webhook denied"},
		{"an older sync failed", `{"sync":{"status":"OutOfSync","revision":"` + commit + `"},"health":{"status":"Healthy"},"operationState":{"phase":"Failed","syncResult":{"revision":"` + other + `"}}}`, false, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			a := app(t, `{"metadata":{"name":"web"},"status":`+c.status+`}`)
			if got := a.Runs(commit, image); got != c.runs {
				t.Errorf("Runs = %v, want %v (%s)", got, c.runs, a.Describe())
			}
			err := a.SyncFailed(commit, image)
			if err == nil {
				err = a.DegradedAt(commit, image)
			}
			switch {
			case c.failed == "" && err != nil:
				t.Errorf("Failed = %v, want nil", err)
			case c.failed != "" && (err == nil || !strings.Contains(err.Error(), c.failed)):
				t.Errorf("Failed = %v, want it to contain %q", err, c.failed)
			}
		})
	}
}

func TestAutoSync(t *testing.T) {
	for js, want := range map[string]bool{
		`{"spec":{}}`: false,
		`{"spec":{"syncPolicy":{"syncOptions":["CreateNamespace=true"]}}}`:     false,
		`{"spec":{"syncPolicy":{"automated":{}}}}`:                             true,
		`{"spec":{"syncPolicy":{"automated":{"prune":true,"enabled":false}}}}`: false,
	} {
		if got := app(t, js).AutoSync(); got != want {
			t.Errorf("%s: AutoSync = %v, want %v", js, got, want)
		}
	}
}
