package argorollouts

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// Phase is a Rollout's phase as the Argo Rollouts controller reports it,
// corrected for what the controller has not observed yet.
type Phase string

// The phases of a Rollout.
const (
	// PhaseProgressing: the controller is moving pods or traffic, or has
	// not yet reacted to the last change.
	PhaseProgressing Phase = "Progressing"
	// PhasePaused: at a pause step, an inconclusive analysis, or paused by
	// hand (Pause); Promote or Resume moves on.
	PhasePaused Phase = "Paused"
	// PhaseHealthy: the desired pod template is stable and available.
	PhaseHealthy Phase = "Healthy"
	// PhaseDegraded: aborted, timed out or an invalid spec; Message says
	// which.
	PhaseDegraded Phase = "Degraded"
)

// ReplicaSet is one of the Rollout's ReplicaSets.
type ReplicaSet struct {
	// Name is empty when the ReplicaSet is not found (none yet, or deleted).
	Name string
	// Hash is its rollouts-pod-template-hash.
	Hash string
	// Desired is spec.replicas; Replicas, Ready and Available count pods.
	Desired, Replicas, Ready, Available int32
	// Images maps container name to image in its pod template.
	Images map[string]string
}

// Status is a snapshot of a Rollout, read by Driver.Status.
type Status struct {
	Namespace, Name string
	// Strategy is "Canary" or "BlueGreen".
	Strategy string
	Phase    Phase
	// Message is the controller's explanation of Phase, e.g.
	// "CanaryPauseStep" or "RolloutAborted: Rollout aborted update to
	// revision 2".
	Message string
	// Generation is metadata.generation, ObservedGeneration the one the
	// controller has processed (0 before it saw the Rollout).
	Generation, ObservedGeneration int64
	// Step is the index of the canary step in progress (0-based), equal
	// to TotalSteps once every step is done. TotalSteps is 0 without steps.
	Step, TotalSteps int
	// SetWeight is the canary weight (percent) the current step asks for:
	// 0 when aborted, 100 once all steps are done.
	SetWeight int32
	// Aborted is status.abort: the update was aborted (by Abort or a
	// failed analysis) and traffic went back to stable; Retry restarts it.
	Aborted bool
	// PausedByUser is spec.paused (Pause); PauseReasons are the
	// controller's pause conditions (CanaryPauseStep, ...).
	PausedByUser bool
	PauseReasons []string
	// Stable and Canary are the stable ReplicaSet and the one of the
	// desired pod template. Canary is zero once fully promoted (the
	// desired template is the stable one).
	Stable, Canary ReplicaSet
	// Images maps container name to image in the Rollout's pod template:
	// what it is rolling out to.
	Images map[string]string
	// Replicas counts over the Rollout's pods: desired (spec.replicas),
	// current, updated (desired template), ready, available.
	Desired, Replicas, Updated, Ready, Available int32

	steps []canaryStep
}

// Status reads the Rollout and its stable and canary ReplicaSets.
func (d *Driver) Status(ctx context.Context) (Status, error) {
	obj, err := d.get(ctx)
	if err != nil {
		return Status{}, err
	}
	r, err := decodeRollout(obj)
	if err != nil {
		return Status{}, err
	}
	st := statusOf(r)
	if w, err := d.workload(ctx, r); err != nil {
		return st, err
	} else if w != nil {
		st.Images = w.spec.images()
		// The controller copies the Deployment's template into the Rollout
		// and records the Deployment generation it copied; before that,
		// status describes the previous template.
		if r.Status.WorkloadObservedGeneration != strconv.FormatInt(w.generation, 10) {
			st.Phase, st.Message = PhaseProgressing, fmt.Sprintf("waiting for the controller to observe generation %d of Deployment %s (spec.workloadRef)", w.generation, w.name)
		}
	}
	if err := d.readReplicaSets(ctx, r, &st); err != nil {
		return st, err
	}
	return st, nil
}

// statusOf computes everything that the Rollout object alone tells.
func statusOf(r *rollout) Status {
	st := Status{
		Namespace:    r.Metadata.Namespace,
		Name:         r.Metadata.Name,
		Generation:   r.Metadata.Generation,
		SetWeight:    r.setWeight(),
		Aborted:      r.Status.Abort,
		PausedByUser: r.Spec.Paused,
		Images:       r.Spec.Template.Spec.images(),
		Desired:      1,
		Replicas:     r.Status.Replicas,
		Updated:      r.Status.UpdatedReplicas,
		Ready:        r.Status.ReadyReplicas,
		Available:    r.Status.AvailableReplicas,
		steps:        r.steps(),
		Stable:       ReplicaSet{Hash: r.Status.StableRS},
	}
	if r.Spec.Replicas != nil {
		st.Desired = *r.Spec.Replicas
	}
	switch {
	case r.Spec.Strategy.Canary != nil:
		st.Strategy = "Canary"
	case len(r.Spec.Strategy.BlueGreen) > 0 && string(r.Spec.Strategy.BlueGreen) != "null":
		st.Strategy = "BlueGreen"
	}
	if g, ok := r.observedGeneration(); ok {
		st.ObservedGeneration = g
	}
	if i, ok := r.stepIndex(); ok {
		st.Step, st.TotalSteps = i, len(st.steps)
	}
	for _, c := range r.Status.PauseConditions {
		st.PauseReasons = append(st.PauseReasons, c.Reason)
	}
	if h := r.Status.CurrentPodHash; h != "" && h != r.Status.StableRS {
		st.Canary.Hash = h
	}
	st.Phase, st.Message = phaseOf(r)
	return st
}

// phaseOf is the controller's phase, except while the controller has not
// reacted to the last write: then the status still describes the state
// before it, and reporting it would let Wait succeed (or fail) on stale
// news.
func phaseOf(r *rollout) (Phase, string) {
	if r.Status.ObservedGeneration == "" && r.Status.Phase == "" {
		return PhaseProgressing, "waiting for the Argo Rollouts controller to process the Rollout"
	}
	if !r.generationObserved() {
		return PhaseProgressing, fmt.Sprintf("waiting for the controller to observe generation %d", r.Metadata.Generation)
	}
	// Promote cleared the pause conditions; the controller has not
	// resumed yet.
	if r.Status.ControllerPause && len(r.Status.PauseConditions) == 0 {
		return PhaseProgressing, "waiting for the controller to resume the rollout"
	}
	// Retry cleared status.abort; the controller still reports the abort.
	if Phase(r.Status.Phase) == PhaseDegraded && !r.Status.Abort && strings.HasPrefix(r.Status.Message, "RolloutAborted") {
		return PhaseProgressing, "waiting for the controller to retry the aborted update"
	}
	// Abort set status.abort; the controller still reports progress.
	if r.Status.Abort && Phase(r.Status.Phase) != PhaseDegraded {
		return PhaseProgressing, "waiting for the controller to abort the update"
	}
	if r.Status.Phase == "" {
		return PhaseProgressing, "waiting for the Argo Rollouts controller to report a phase"
	}
	return Phase(r.Status.Phase), r.Status.Message
}

// readReplicaSets fills in Stable and Canary from the ReplicaSets the
// Rollout owns.
func (d *Driver) readReplicaSets(ctx context.Context, r *rollout, st *Status) error {
	var hashes []string
	for _, h := range []string{st.Stable.Hash, st.Canary.Hash} {
		if h != "" {
			hashes = append(hashes, h)
		}
	}
	if len(hashes) == 0 {
		return nil
	}
	list, err := d.dyn.Resource(replicaSetGVR()).Namespace(d.namespace).List(ctx, metav1.ListOptions{
		LabelSelector: PodTemplateHashLabel + " in (" + strings.Join(hashes, ",") + ")",
	})
	if err != nil {
		return fmt.Errorf("listing the ReplicaSets of %s: %w", d, err)
	}
	for i := range list.Items {
		u := &list.Items[i]
		if !ownedBy(u, r.Metadata.UID) {
			continue
		}
		rs, err := decodeReplicaSet(u)
		if err != nil {
			return err
		}
		switch rs.Hash {
		case st.Stable.Hash:
			st.Stable = rs
		case st.Canary.Hash:
			st.Canary = rs
		}
	}
	return nil
}

func ownedBy(u *unstructured.Unstructured, uid string) bool {
	for _, o := range u.GetOwnerReferences() {
		if string(o.UID) == uid {
			return true
		}
	}
	return false
}

func decodeReplicaSet(u *unstructured.Unstructured) (ReplicaSet, error) {
	var rs struct {
		Metadata struct {
			Name   string            `json:"name"`
			Labels map[string]string `json:"labels"`
		} `json:"metadata"`
		Spec struct {
			Replicas *int32 `json:"replicas"`
			Template struct {
				Spec podSpec `json:"spec"`
			} `json:"template"`
		} `json:"spec"`
		Status struct {
			Replicas          int32 `json:"replicas"`
			ReadyReplicas     int32 `json:"readyReplicas"`
			AvailableReplicas int32 `json:"availableReplicas"`
		} `json:"status"`
	}
	if err := decodeInto(u, &rs); err != nil {
		return ReplicaSet{}, err
	}
	out := ReplicaSet{
		Name:      rs.Metadata.Name,
		Hash:      rs.Metadata.Labels[PodTemplateHashLabel],
		Desired:   1,
		Replicas:  rs.Status.Replicas,
		Ready:     rs.Status.ReadyReplicas,
		Available: rs.Status.AvailableReplicas,
		Images:    rs.Spec.Template.Spec.images(),
	}
	if rs.Spec.Replicas != nil {
		out.Desired = *rs.Spec.Replicas
	}
	return out, nil
}

// String is a one-line summary for logs: phase, message, step and weight.
func (s Status) String() string {
	var b strings.Builder
	b.WriteString(string(s.Phase))
	if s.Message != "" {
		fmt.Fprintf(&b, " (%s)", s.Message)
	}
	if s.TotalSteps > 0 {
		fmt.Fprintf(&b, ", step %d/%d", s.Step, s.TotalSteps)
	}
	if s.Strategy == "Canary" {
		fmt.Fprintf(&b, ", weight %d%%", s.SetWeight)
	}
	fmt.Fprintf(&b, ", %d/%d updated, %d available", s.Updated, s.Desired, s.Available)
	if s.Aborted {
		b.WriteString(", aborted")
	}
	if s.PausedByUser {
		b.WriteString(", paused by user")
	}
	return b.String()
}

// StepState is where a canary step stands.
type StepState string

// The states of a step.
const (
	StepDone    StepState = "done"
	StepCurrent StepState = "current"
	StepPending StepState = "pending"
)

// Step is one canary step, rendered for people.
type Step struct {
	// Index is the step's 0-based index in spec.strategy.canary.steps.
	Index int
	// Text describes it: "setWeight 20%", "pause until promoted",
	// "pause 2s", "analysis (success-rate)", ...
	Text  string
	State StepState
}

// String renders the step as a list line, the current one marked:
// "▶ 2. pause until promoted".
func (s Step) String() string {
	mark := map[StepState]string{StepDone: "✓", StepCurrent: "▶", StepPending: "·"}[s.State]
	return fmt.Sprintf("%s %d. %s", mark, s.Index+1, s.Text)
}

// Steps returns the Rollout's canary steps, each marked done, current or
// pending from the current step index. A Rollout without canary steps has
// none.
func (s Status) Steps() []Step {
	out := make([]Step, 0, len(s.steps))
	for i, st := range s.steps {
		state := StepPending
		switch {
		case i < s.Step:
			state = StepDone
		case i == s.Step:
			state = StepCurrent
		}
		out = append(out, Step{Index: i, Text: describeStep(st), State: state})
	}
	return out
}

func describeStep(s canaryStep) string {
	switch {
	case s.SetWeight != nil:
		return fmt.Sprintf("setWeight %d%%", *s.SetWeight)
	case s.Pause != nil:
		if s.Pause.Duration == nil {
			return "pause until promoted"
		}
		if s.Pause.Duration.Type == intstr.Int {
			return fmt.Sprintf("pause %ds", s.Pause.Duration.IntVal)
		}
		return "pause " + s.Pause.Duration.StrVal
	case s.Analysis != nil:
		var names []string
		for _, t := range s.Analysis.Templates {
			names = append(names, t.TemplateName)
		}
		return "analysis (" + strings.Join(names, ", ") + ")"
	case s.Experiment != nil:
		var names []string
		for _, t := range s.Experiment.Templates {
			names = append(names, t.Name)
		}
		text := "experiment (" + strings.Join(names, ", ") + ")"
		if s.Experiment.Duration != "" {
			text += " for " + s.Experiment.Duration
		}
		return text
	case s.SetCanaryScale != nil:
		switch c := s.SetCanaryScale; {
		case c.Replicas != nil:
			return fmt.Sprintf("setCanaryScale %d replicas", *c.Replicas)
		case c.Weight != nil:
			return fmt.Sprintf("setCanaryScale %d%%", *c.Weight)
		default:
			return "setCanaryScale matchTrafficWeight"
		}
	case s.SetHeaderRoute != nil:
		return "setHeaderRoute " + s.SetHeaderRoute.Name
	case s.SetMirrorRoute != nil:
		return "setMirrorRoute " + s.SetMirrorRoute.Name
	case s.Plugin != nil:
		return "plugin " + s.Plugin.Name
	}
	return "unknown step"
}

// Markdown renders the status for a job summary: phase, weight, images of
// the stable and canary ReplicaSets and the canary steps with the current
// one marked.
func (s Status) Markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "**Rollout %s/%s**: %s", s.Namespace, s.Name, s.Phase)
	if s.Message != "" {
		fmt.Fprintf(&b, " — %s", s.Message)
	}
	b.WriteString("\n\n| | |\n|---|---|\n")
	if s.TotalSteps > 0 {
		fmt.Fprintf(&b, "| step | %d of %d |\n", min(s.Step+1, s.TotalSteps), s.TotalSteps)
	}
	if s.Strategy == "Canary" {
		fmt.Fprintf(&b, "| canary weight | %d%% |\n", s.SetWeight)
	}
	fmt.Fprintf(&b, "| pods | %d desired, %d updated, %d available |\n", s.Desired, s.Updated, s.Available)
	for _, rs := range []struct {
		role string
		rs   ReplicaSet
	}{{"stable", s.Stable}, {"canary", s.Canary}} {
		if rs.rs.Hash == "" {
			continue
		}
		fmt.Fprintf(&b, "| %s | `%s` %d/%d available", rs.role, rs.rs.Hash, rs.rs.Available, rs.rs.Desired)
		for _, name := range slices.Sorted(maps.Keys(rs.rs.Images)) {
			fmt.Fprintf(&b, "<br>%s: `%s`", name, rs.rs.Images[name])
		}
		b.WriteString(" |\n")
	}
	if steps := s.Steps(); len(steps) > 0 {
		b.WriteString("\n| | step | |\n|---|---|---|\n")
		for _, st := range steps {
			mark := map[StepState]string{StepDone: "✅", StepCurrent: "▶️", StepPending: ""}[st.State]
			text := st.Text
			if st.State == StepCurrent {
				text = "**" + text + "**"
			}
			fmt.Fprintf(&b, "| %s | %s | %d |\n", mark, text, st.Index+1)
		}
	}
	return b.String()
}
