package argorollouts

import (
	"encoding/json"
	"strings"
	"testing"
)

// decode builds a rollout from JSON, as the API server would return it.
func decode(t *testing.T, js string) *rollout {
	t.Helper()
	var r rollout
	if err := json.Unmarshal([]byte(js), &r); err != nil {
		t.Fatal(err)
	}
	return &r
}

const stepsJSON = `"steps": [
	{"setWeight": 20}, {"pause": {}}, {"setWeight": 50}, {"pause": {"duration": 30}},
	{"analysis": {"templates": [{"templateName": "success-rate"}, {"templateName": "latency"}]}},
	{"pause": {"duration": "1h"}},
	{"experiment": {"duration": "5m", "templates": [{"name": "baseline"}, {"name": "canary"}]}},
	{"setCanaryScale": {"replicas": 3}}, {"setCanaryScale": {"weight": 25}}, {"setCanaryScale": {"matchTrafficWeight": true}},
	{"setHeaderRoute": {"name": "beta-users"}}, {"setMirrorRoute": {"name": "mirror-10"}},
	{"plugin": {"name": "acme/smoke"}}, {"setWeight": 100}
]`

func TestSteps(t *testing.T) {
	t.Parallel()
	r := decode(t, `{"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
		"metadata": {"name": "web", "namespace": "prod", "generation": 2},
		"spec": {"strategy": {"canary": {`+stepsJSON+`}}},
		"status": {"observedGeneration": "2", "phase": "Paused", "message": "CanaryPauseStep", "currentStepIndex": 3,
			"pauseConditions": [{"reason": "CanaryPauseStep"}], "controllerPause": true}}`)
	st := statusOf(r)
	var got []string
	for _, s := range st.Steps() {
		got = append(got, s.String())
	}
	want := []string{
		"✓ 1. setWeight 20%",
		"✓ 2. pause until promoted",
		"✓ 3. setWeight 50%",
		"▶ 4. pause 30s",
		"· 5. analysis (success-rate, latency)",
		"· 6. pause 1h",
		"· 7. experiment (baseline, canary) for 5m",
		"· 8. setCanaryScale 3 replicas",
		"· 9. setCanaryScale 25%",
		"· 10. setCanaryScale matchTrafficWeight",
		"· 11. setHeaderRoute beta-users",
		"· 12. setMirrorRoute mirror-10",
		"· 13. plugin acme/smoke",
		"· 14. setWeight 100%",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("Steps():\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if st.Phase != PhasePaused || st.Step != 3 || st.TotalSteps != 14 || st.SetWeight != 50 || st.Strategy != "Canary" {
		t.Errorf("status: %+v", st)
	}
	if got, want := st.String(), "Paused (CanaryPauseStep), step 3/14, weight 50%, 0/1 updated, 0 available"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	md := st.Markdown()
	for _, want := range []string{"**Rollout prod/web**: Paused — CanaryPauseStep", "| step | 4 of 14 |", "| ▶️ | **pause 30s** | 4 |", "| ✅ | setWeight 50% | 3 |", "|  | setWeight 100% | 14 |"} {
		if !strings.Contains(md, want) {
			t.Errorf("Markdown() lacks %q:\n%s", want, md)
		}
	}
}

func TestSetWeight(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		status string
		want   int32
	}{
		{`{}`, 20}, // no index yet: the first step
		{`{"currentStepIndex": 0}`, 20},
		{`{"currentStepIndex": 1}`, 20},
		{`{"currentStepIndex": 2}`, 50},
		{`{"currentStepIndex": 13}`, 100},
		{`{"currentStepIndex": 14}`, 100}, // all done
		{`{"currentStepIndex": 3, "abort": true}`, 0},
	} {
		r := decode(t, `{"metadata": {"name": "web"}, "spec": {"strategy": {"canary": {`+stepsJSON+`}}}, "status": `+tc.status+`}`)
		if got := r.setWeight(); got != tc.want {
			t.Errorf("status %s: setWeight %d, want %d", tc.status, got, tc.want)
		}
	}
	if got := decode(t, `{"spec": {"strategy": {"canary": {}}}}`).setWeight(); got != 100 {
		t.Errorf("canary without steps: setWeight %d, want 100", got)
	}
}

// TestPhase: the controller's phase, except where it has not yet reacted
// to a write, so Wait never acts on news from before it.
func TestPhase(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, generation, status string
		want                     Phase
		message                  string
	}{
		{"new, never processed", "1", `{}`, PhaseProgressing, "waiting for the Argo Rollouts controller to process the Rollout"},
		{"spec changed (SetImage)", "3", `{"observedGeneration": "2", "phase": "Healthy"}`, PhaseProgressing, "waiting for the controller to observe generation 3"},
		{"promoted, not resumed yet", "2", `{"observedGeneration": "2", "phase": "Paused", "message": "CanaryPauseStep", "controllerPause": true}`, PhaseProgressing, "waiting for the controller to resume the rollout"},
		{"retried, abort still reported", "2", `{"observedGeneration": "2", "phase": "Degraded", "message": "RolloutAborted: Rollout aborted update to revision 2"}`, PhaseProgressing, "waiting for the controller to retry the aborted update"},
		{"aborted, not yet acted on", "2", `{"observedGeneration": "2", "phase": "Paused", "abort": true, "pauseConditions": [{"reason": "CanaryPauseStep"}]}`, PhaseProgressing, "waiting for the controller to abort the update"},
		{"paused", "2", `{"observedGeneration": "2", "phase": "Paused", "message": "CanaryPauseStep", "controllerPause": true, "pauseConditions": [{"reason": "CanaryPauseStep"}]}`, PhasePaused, "CanaryPauseStep"},
		{"aborted", "2", `{"observedGeneration": "2", "phase": "Degraded", "message": "RolloutAborted: Rollout aborted update to revision 2", "abort": true}`, PhaseDegraded, "RolloutAborted: Rollout aborted update to revision 2"},
		{"timed out", "2", `{"observedGeneration": "2", "phase": "Degraded", "message": "ProgressDeadlineExceeded: ReplicaSet \"web-1\" has timed out progressing."}`, PhaseDegraded, "ProgressDeadlineExceeded: ReplicaSet \"web-1\" has timed out progressing."},
		{"healthy", "2", `{"observedGeneration": "2", "phase": "Healthy"}`, PhaseHealthy, ""},
	} {
		r := decode(t, `{"metadata": {"name": "web", "generation": `+tc.generation+`}, "spec": {"strategy": {"canary": {`+stepsJSON+`}}}, "status": `+tc.status+`}`)
		phase, msg := phaseOf(r)
		if phase != tc.want || msg != tc.message {
			t.Errorf("%s: %s %q, want %s %q", tc.name, phase, msg, tc.want, tc.message)
		}
	}
}

func TestParseDigestImage(t *testing.T) {
	t.Parallel()
	digest := "sha256:" + strings.Repeat("0123456789abcdef", 4)
	for _, ok := range []string{
		"ghcr.io/acme/web@" + digest,
		"localhost:5000/web@" + digest,
		"web@" + digest,
		" ghcr.io/acme/web@" + digest + "\n",
	} {
		if got, err := ParseDigestImage(ok); err != nil || got != strings.TrimSpace(ok) {
			t.Errorf("ParseDigestImage(%q) = %q, %v; want it accepted", ok, got, err)
		}
	}
	for image, want := range map[string]string{
		"ghcr.io/acme/web:v2":                  "is not pinned by digest",
		"localhost:5000/web":                   "is not pinned by digest",
		"ghcr.io/acme/web@sha256:abc":          "is not a valid image by digest",
		"ghcr.io/acme/web@md5:" + digest[7:39]: "is not a valid image by digest",
		"ghcr.io/acme/WEB@" + digest:           "is not a valid image by digest",
		"localhost:5000/web:v2@" + digest:      "has both a tag and a digest: give localhost:5000/web@" + digest,
		"":                                     "the image is empty",
	} {
		if _, err := ParseDigestImage(image); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseDigestImage(%q): %v, want …%s…", image, err, want)
		}
	}
}
