package argorollouts

import (
	"encoding/json"
	"strconv"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// rollout is the part of an argoproj.io/v1alpha1 Rollout this package
// reads. It is decoded from the unstructured object rather than from Argo
// Rollouts' Go types so that the main module does not depend on that
// module (whose Kubernetes libraries lag ours) and so that fields a newer
// controller adds are never dropped: writes are patches, never updates of
// a decoded copy.
type rollout struct {
	Metadata struct {
		Name            string `json:"name"`
		Namespace       string `json:"namespace"`
		UID             string `json:"uid"`
		Generation      int64  `json:"generation"`
		ResourceVersion string `json:"resourceVersion"`
	} `json:"metadata"`
	Spec struct {
		Replicas    *int32 `json:"replicas"`
		Paused      bool   `json:"paused"`
		WorkloadRef *struct {
			Kind string `json:"kind"`
			Name string `json:"name"`
		} `json:"workloadRef"`
		Template struct {
			Spec podSpec `json:"spec"`
		} `json:"template"`
		Strategy struct {
			Canary *struct {
				Steps          []canaryStep    `json:"steps"`
				TrafficRouting json.RawMessage `json:"trafficRouting"`
			} `json:"canary"`
			BlueGreen json.RawMessage `json:"blueGreen"`
		} `json:"strategy"`
	} `json:"spec"`
	Status struct {
		ObservedGeneration         string `json:"observedGeneration"`
		WorkloadObservedGeneration string `json:"workloadObservedGeneration"`
		Phase                      string `json:"phase"`
		Message                    string `json:"message"`
		CurrentStepIndex           *int32 `json:"currentStepIndex"`
		CurrentPodHash             string `json:"currentPodHash"`
		StableRS                   string `json:"stableRS"`
		Abort                      bool   `json:"abort"`
		ControllerPause            bool   `json:"controllerPause"`
		PauseConditions            []struct {
			Reason string `json:"reason"`
		} `json:"pauseConditions"`
		Replicas          int32 `json:"replicas"`
		UpdatedReplicas   int32 `json:"updatedReplicas"`
		ReadyReplicas     int32 `json:"readyReplicas"`
		AvailableReplicas int32 `json:"availableReplicas"`
		Canary            struct {
			CurrentStepAnalysisRunStatus *struct {
				Status string `json:"status"`
			} `json:"currentStepAnalysisRunStatus"`
		} `json:"canary"`
	} `json:"status"`
}

type podSpec struct {
	InitContainers []container `json:"initContainers"`
	Containers     []container `json:"containers"`
}

type container struct {
	Name  string `json:"name"`
	Image string `json:"image"`
}

// images maps container name to image, init containers included.
func (p podSpec) images() map[string]string {
	m := make(map[string]string, len(p.Containers)+len(p.InitContainers))
	for _, c := range p.InitContainers {
		m[c.Name] = c.Image
	}
	for _, c := range p.Containers {
		m[c.Name] = c.Image
	}
	return m
}

// canaryStep is one entry of spec.strategy.canary.steps; exactly one field
// is set.
type canaryStep struct {
	SetWeight *int32 `json:"setWeight"`
	Pause     *struct {
		Duration *intstr.IntOrString `json:"duration"`
	} `json:"pause"`
	Analysis *struct {
		Templates []struct {
			TemplateName string `json:"templateName"`
		} `json:"templates"`
	} `json:"analysis"`
	Experiment *struct {
		Duration  string `json:"duration"`
		Templates []struct {
			Name string `json:"name"`
		} `json:"templates"`
	} `json:"experiment"`
	SetCanaryScale *struct {
		Replicas           *int32 `json:"replicas"`
		Weight             *int32 `json:"weight"`
		MatchTrafficWeight bool   `json:"matchTrafficWeight"`
	} `json:"setCanaryScale"`
	SetHeaderRoute *struct {
		Name string `json:"name"`
	} `json:"setHeaderRoute"`
	SetMirrorRoute *struct {
		Name string `json:"name"`
	} `json:"setMirrorRoute"`
	Plugin *struct {
		Name string `json:"name"`
	} `json:"plugin"`
}

func decodeRollout(u *unstructured.Unstructured) (*rollout, error) {
	var r rollout
	if err := decodeInto(u, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

// observedGeneration is status.observedGeneration, a string in Argo
// Rollouts (a hash before v0.10); ok is false when it is not a number.
func (r *rollout) observedGeneration() (gen int64, ok bool) {
	g, err := strconv.ParseInt(r.Status.ObservedGeneration, 10, 64)
	return g, err == nil
}

// generationObserved reports whether the controller has seen the current
// spec; until it has, status describes the previous one.
func (r *rollout) generationObserved() bool {
	g, ok := r.observedGeneration()
	return !ok || g >= r.Metadata.Generation
}

func (r *rollout) steps() []canaryStep {
	if r.Spec.Strategy.Canary == nil {
		return nil
	}
	return r.Spec.Strategy.Canary.Steps
}

// stepIndex is the index of the step the controller is on: 0 when unset,
// len(steps) once all are done. ok is false for a Rollout without steps.
func (r *rollout) stepIndex() (int, bool) {
	steps := r.steps()
	if len(steps) == 0 {
		return 0, false
	}
	i := 0
	if r.Status.CurrentStepIndex != nil {
		i = int(*r.Status.CurrentStepIndex)
	}
	return min(max(i, 0), len(steps)), true
}

// setWeight is the canary weight the current step asks for, as the
// controller computes it: 0 when aborted, 100 past the last step (or
// without steps), else the last setWeight at or before the current step.
func (r *rollout) setWeight() int32 {
	if r.Status.Abort {
		return 0
	}
	i, ok := r.stepIndex()
	steps := r.steps()
	if !ok || i >= len(steps) {
		return 100
	}
	for ; i >= 0; i-- {
		if w := steps[i].SetWeight; w != nil {
			return *w
		}
	}
	return 0
}

// fullyPromoted: the desired pod template is the stable one, there is no
// update to promote or abort.
func (r *rollout) fullyPromoted() bool {
	return r.Status.StableRS != "" && r.Status.StableRS == r.Status.CurrentPodHash
}
