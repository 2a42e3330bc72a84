package progressive

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/kubernetes"
	coordinationv1client "k8s.io/client-go/kubernetes/typed/coordination/v1"
)

// Phase is where a progressive rollout stands.
type Phase string

// The phases. Progressing, Paused and RollingBack are unfinished: a later
// run must resume or abort the first two; only abort finishes the third.
const (
	// PhaseNone: no rollout state is recorded for the environment.
	PhaseNone        Phase = "none"
	PhaseProgressing Phase = "progressing"
	PhasePaused      Phase = "paused"
	// PhaseRollingBack: a rollback or an abort began (recorded before
	// any traffic moves back) and did not finish: its runner died.
	// Resuming would run the canary it was taking traffic from again.
	PhaseRollingBack Phase = "rolling-back"
	PhasePromoted    Phase = "promoted"
	PhaseRolledBack  Phase = "rolled-back"
	PhaseAborted     Phase = "aborted"
)

// recorded lists every phase a state may record.
var recorded = []Phase{PhaseProgressing, PhasePaused, PhaseRollingBack, PhasePromoted, PhaseRolledBack, PhaseAborted}

func (p Phase) known() bool { return slices.Contains(recorded, p) }

// phases names the recorded phases, for errors.
func phases() string {
	names := make([]string, len(recorded))
	for i, p := range recorded {
		names[i] = string(p)
	}
	return strings.Join(names, ", ")
}

// The annotations a State is stored in, on the environment's Lease.
const (
	AnnotationPhase          = "gantry.dev/phase"
	AnnotationStep           = "gantry.dev/step"
	AnnotationSteps          = "gantry.dev/steps"
	AnnotationWeights        = "gantry.dev/weights"
	AnnotationStable         = "gantry.dev/stable"
	AnnotationStableDigest   = "gantry.dev/stable-digest"
	AnnotationCanaryWorkload = "gantry.dev/canary"
	AnnotationCanaryDigest   = "gantry.dev/canary-digest"
	AnnotationRollbackTarget = "gantry.dev/rollback-target"
	AnnotationRouter         = "gantry.dev/router"
	AnnotationReason         = "gantry.dev/reason"
	AnnotationRunURL         = "gantry.dev/run-url"
	AnnotationStarted        = "gantry.dev/started-at"
	AnnotationUpdated        = "gantry.dev/updated-at"
	// The schedule's bake, and the route as the deploy's inputs named it:
	// what resume, promote and abort take from the record.
	AnnotationBake          = "gantry.dev/bake"
	AnnotationTrafficRouter = "gantry.dev/traffic-router"
	AnnotationRoute         = "gantry.dev/route"
	AnnotationStableService = "gantry.dev/stable-service"
	AnnotationCanaryService = "gantry.dev/canary-service"
	// AnnotationAnalysis holds the analysis settings the deploy started
	// with (JSON), for a later run to compare its own with.
	AnnotationAnalysis = "gantry.dev/analysis"
)

// stateAnnotations lists the annotations of a State.
func stateAnnotations() []string {
	return []string{
		AnnotationPhase, AnnotationStep, AnnotationSteps, AnnotationWeights,
		AnnotationStable, AnnotationStableDigest, AnnotationCanaryWorkload, AnnotationCanaryDigest,
		AnnotationRollbackTarget, AnnotationRouter, AnnotationReason, AnnotationRunURL,
		AnnotationStarted, AnnotationUpdated,
		AnnotationBake, AnnotationTrafficRouter, AnnotationRoute, AnnotationStableService, AnnotationCanaryService,
		AnnotationAnalysis,
	}
}

// Workload is one version of the application: its Deployment (or other
// workload) name and image digest.
type Workload struct {
	Name   string
	Digest string
}

// State is a progressive rollout as recorded for its environment, enough
// for a later run (the runner of this one may die) to resume or abort it.
type State struct {
	Phase Phase
	// Step indexes Steps: the step in force (0 is the first).
	Step  int
	Steps Steps
	// Bake is the analysis at 100 % after the last step (0: none); nil
	// when the state was recorded without one (by an older Gantry).
	Bake *time.Duration
	// StableWeight and CanaryWeight are the split last set, in percent.
	StableWeight, CanaryWeight int
	// Stable is the version in production (blue), Canary the new one
	// (green).
	Stable, Canary Workload
	// RollbackTarget is what an abort returns to, e.g. the stable
	// digest or a revision.
	RollbackTarget string
	// Router is the route's Router.Describe().
	Router string
	// Route is the route as the deploy's inputs named it: router kind,
	// route and Services (Namespace is the Store's). Zero when the state
	// was recorded without it (by an older Gantry).
	Route Config
	// Analysis is the analysis settings the rollout started with, as the
	// deploy stage writes them; Gantry compares, it does not parse.
	Analysis string
	// Reason says why the rollout paused, rolled back or was aborted.
	Reason string
	// RunURL is the workflow run that wrote the state last.
	RunURL string
	// Started is when the rollout began, Updated when the state was last
	// saved (set by Store.Save; whole seconds, UTC).
	Started, Updated time.Time

	// base is the state as read from the Lease (nil: none), which Save
	// expects to find there still.
	base map[string]string
}

// Active reports whether the rollout is unfinished (progressing, paused
// or rolling back): the environment's next deploy must resume or abort it.
func (s State) Active() bool {
	return s.Phase == PhaseProgressing || s.Phase == PhasePaused || s.Phase == PhaseRollingBack
}

// Describe is one line about the rollout for people, e.g. "progressing at
// step 2 of 4, 50/50 stable/canary: canary app-green (sha256:…) over
// stable app-blue (sha256:…) …".
func (s State) Describe() string {
	if s.Phase == "" || s.Phase == PhaseNone {
		return "no rollout recorded"
	}
	var b strings.Builder
	b.WriteString(string(s.Phase))
	if len(s.Steps) > 0 {
		fmt.Fprintf(&b, " at step %d of %d (%s", s.Step+1, len(s.Steps), s.Steps)
		if s.Bake != nil && *s.Bake > 0 {
			fmt.Fprintf(&b, ", bake %s", shortDuration(*s.Bake))
		}
		b.WriteByte(')')
	}
	fmt.Fprintf(&b, ", %d/%d stable/canary", s.StableWeight, s.CanaryWeight)
	if s.Canary.Name != "" || s.Stable.Name != "" {
		fmt.Fprintf(&b, ": canary %s over stable %s", workload(s.Canary), workload(s.Stable))
	}
	if s.Router != "" {
		fmt.Fprintf(&b, " via %s", s.Router)
	}
	if s.RollbackTarget != "" {
		fmt.Fprintf(&b, "; rollback target %s", s.RollbackTarget)
	}
	if s.Reason != "" {
		fmt.Fprintf(&b, "; reason: %s", s.Reason)
	}
	if !s.Started.IsZero() {
		fmt.Fprintf(&b, "; started %s", s.Started.UTC().Format(time.RFC3339))
	}
	if !s.Updated.IsZero() {
		fmt.Fprintf(&b, ", last saved %s", s.Updated.UTC().Format(time.RFC3339))
	}
	if s.RunURL != "" {
		fmt.Fprintf(&b, " by %s", s.RunURL)
	}
	return b.String()
}

func workload(w Workload) string {
	name := w.Name
	if name == "" {
		name = "(unnamed)"
	}
	if w.Digest == "" {
		return name
	}
	return name + " (" + w.Digest + ")"
}

// validate checks what Save would write.
func (s State) validate() error {
	if !s.Phase.known() {
		return fmt.Errorf("rollout state: phase %q is not one of %s", s.Phase, phases())
	}
	if err := ValidateWeights(s.StableWeight, s.CanaryWeight); err != nil {
		return fmt.Errorf("rollout state: %w", err)
	}
	if s.Step < 0 || (len(s.Steps) > 0 && s.Step >= len(s.Steps)) {
		return fmt.Errorf("rollout state: step index %d is outside the %d steps", s.Step, len(s.Steps))
	}
	return nil
}

func (s State) annotations() map[string]string {
	a := map[string]string{
		AnnotationPhase:   string(s.Phase),
		AnnotationStep:    strconv.Itoa(s.Step),
		AnnotationWeights: fmt.Sprintf("%d/%d", s.StableWeight, s.CanaryWeight),
		AnnotationStarted: s.Started.UTC().Format(time.RFC3339),
		AnnotationUpdated: s.Updated.UTC().Format(time.RFC3339),
	}
	for k, v := range map[string]string{
		AnnotationSteps:          s.Steps.String(),
		AnnotationStable:         s.Stable.Name,
		AnnotationStableDigest:   s.Stable.Digest,
		AnnotationCanaryWorkload: s.Canary.Name,
		AnnotationCanaryDigest:   s.Canary.Digest,
		AnnotationRollbackTarget: s.RollbackTarget,
		AnnotationRouter:         s.Router,
		AnnotationReason:         s.Reason,
		AnnotationRunURL:         s.RunURL,
		AnnotationTrafficRouter:  s.Route.Router,
		AnnotationRoute:          s.Route.Route,
		AnnotationStableService:  s.Route.Stable,
		AnnotationCanaryService:  s.Route.Canary,
		AnnotationAnalysis:       s.Analysis,
	} {
		if v != "" {
			a[k] = v
		}
	}
	if s.Bake != nil {
		a[AnnotationBake] = shortDuration(*s.Bake)
	}
	return a
}

// Store keeps the State of one environment's progressive rollout in
// annotations of the environment's Lease, gantry-deploy-<environment>,
// the Lease that serialises deploys to it.
type Store struct {
	leases    coordinationv1client.LeaseInterface
	namespace string
	name      string
	// beforeUpdate, when set, runs between reading the Lease and
	// updating it (tests: a write in that window).
	beforeUpdate func()
}

// NewStore returns the Store of environment in namespace.
func NewStore(cs kubernetes.Interface, namespace, environment string) (*Store, error) {
	if errs := validation.IsDNS1123Label(namespace); len(errs) > 0 {
		return nil, fmt.Errorf(`input "namespace": %q is not a namespace name: %s`, namespace, strings.Join(errs, "; "))
	}
	if environment == "" {
		return nil, fmt.Errorf(`input "environment" is empty: name the environment (e.g. production)`)
	}
	name := LeaseName(environment)
	if errs := validation.IsDNS1123Subdomain(name); len(errs) > 0 {
		return nil, fmt.Errorf(`input "environment": %q does not make a Lease name (%s): use lower-case letters, digits and "-"`, environment, strings.Join(errs, "; "))
	}
	return &Store{leases: cs.CoordinationV1().Leases(namespace), namespace: namespace, name: name}, nil
}

// LeaseName is the environment's Lease, as the deploy stage names it
// (rollout.LeaseName).
func LeaseName(environment string) string { return "gantry-deploy-" + environment }

// Lease is "namespace/name" of the Lease the state is kept on.
func (s *Store) Lease() string { return s.namespace + "/" + s.name }

// Load reads the recorded state; without one (no Lease, or a Lease
// without the annotations) its Phase is PhaseNone.
func (s *Store) Load(ctx context.Context) (State, error) {
	lease, err := s.leases.Get(ctx, s.name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return State{Phase: PhaseNone}, nil
	}
	if err != nil {
		return State{}, fmt.Errorf("reading the rollout state from Lease %s: %w", s.Lease(), err)
	}
	return s.decode(lease.Annotations)
}

// ConflictError is Save's answer when the recorded state is no longer the
// one the caller loaded: another run changed it meanwhile.
type ConflictError struct {
	Lease string
	// Current is the state recorded now.
	Current State
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("the rollout state on Lease %s changed since this run read it (another run?): now %s; load it again and decide from there", e.Lease, e.Current.Describe())
}

// Save records st, creating the Lease if needed, and returns it as
// saved: Updated set to now, Started to now when zero. st must derive
// from the state Load (or a previous Save) returned, and that state must
// still be the one recorded, else Save writes nothing and returns a
// *ConflictError with the state found; a State made from scratch expects
// none. Writes of the Lease that leave the state alone (a deploy renewing
// its hold) are no conflict: Save retries on the fresh Lease.
func (s *Store) Save(ctx context.Context, st State) (State, error) {
	now := time.Now().UTC().Truncate(time.Second)
	st.Updated = now
	if st.Started.IsZero() {
		st.Started = now
	}
	st.Started = st.Started.UTC().Truncate(time.Second)
	if err := st.validate(); err != nil {
		return State{}, err
	}
	want := st.annotations()
	for {
		lease, err := s.leases.Get(ctx, s.name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			if len(st.base) > 0 {
				return State{}, &ConflictError{Lease: s.Lease(), Current: State{Phase: PhaseNone}}
			}
			_, err = s.leases.Create(ctx, &coordinationv1.Lease{
				ObjectMeta: metav1.ObjectMeta{
					Name:        s.name,
					Labels:      map[string]string{"app.kubernetes.io/managed-by": "gantry"},
					Annotations: want,
				},
			}, metav1.CreateOptions{FieldManager: FieldManager})
			if apierrors.IsAlreadyExists(err) {
				continue
			}
		} else if err == nil {
			if cur := pick(lease.Annotations); !maps.Equal(cur, st.base) {
				found, derr := s.decode(lease.Annotations)
				if derr != nil {
					return State{}, derr
				}
				return State{}, &ConflictError{Lease: s.Lease(), Current: found}
			}
			if lease.Annotations == nil {
				lease.Annotations = map[string]string{}
			}
			for _, k := range stateAnnotations() {
				delete(lease.Annotations, k)
			}
			maps.Copy(lease.Annotations, want)
			if s.beforeUpdate != nil {
				s.beforeUpdate()
			}
			// The update carries the resourceVersion read: any write
			// since is a conflict, and the loop looks again.
			_, err = s.leases.Update(ctx, lease, metav1.UpdateOptions{FieldManager: FieldManager})
			if apierrors.IsConflict(err) {
				if cerr := ctx.Err(); cerr != nil {
					return State{}, fmt.Errorf("saving the rollout state on Lease %s: %w", s.Lease(), cerr)
				}
				continue
			}
		}
		if err != nil {
			return State{}, fmt.Errorf("saving the rollout state on Lease %s: %w", s.Lease(), err)
		}
		st.base = want
		return st, nil
	}
}

// pick returns the state annotations of a Lease's annotations, nil when
// there are none.
func pick(ann map[string]string) map[string]string {
	var out map[string]string
	for _, k := range stateAnnotations() {
		if v, ok := ann[k]; ok {
			if out == nil {
				out = map[string]string{}
			}
			out[k] = v
		}
	}
	return out
}

// decode reads a State from a Lease's annotations. A value that does not
// parse was edited by hand: the error names it and how to start over.
func (s *Store) decode(ann map[string]string) (State, error) {
	base := pick(ann)
	if len(base) == 0 {
		return State{Phase: PhaseNone}, nil
	}
	st := State{
		Phase:          Phase(base[AnnotationPhase]),
		Stable:         Workload{Name: base[AnnotationStable], Digest: base[AnnotationStableDigest]},
		Canary:         Workload{Name: base[AnnotationCanaryWorkload], Digest: base[AnnotationCanaryDigest]},
		RollbackTarget: base[AnnotationRollbackTarget],
		Router:         base[AnnotationRouter],
		Reason:         base[AnnotationReason],
		RunURL:         base[AnnotationRunURL],
		Analysis:       base[AnnotationAnalysis],
		base:           base,
	}
	if base[AnnotationRoute] != "" {
		st.Route = Config{
			Router: base[AnnotationTrafficRouter], Namespace: s.namespace, Route: base[AnnotationRoute],
			Stable: base[AnnotationStableService], Canary: base[AnnotationCanaryService],
		}
	}
	bad := func(key, why string) (State, error) {
		return State{}, fmt.Errorf("Lease %s: annotation %s=%q %s: fix it, or remove the gantry.dev/ annotations of the Lease to forget the rollout (kubectl annotate lease -n %s %s %s-)",
			s.Lease(), key, base[key], why, s.namespace, s.name, key)
	}
	if !st.Phase.known() {
		return bad(AnnotationPhase, "is not a phase ("+phases()+")")
	}
	var err error
	if st.Step, err = strconv.Atoi(base[AnnotationStep]); err != nil || st.Step < 0 {
		return bad(AnnotationStep, "is not a step index")
	}
	if v := base[AnnotationSteps]; v != "" {
		if st.Steps, err = ParseSteps(v); err != nil {
			return bad(AnnotationSteps, "is not a list of steps")
		}
		if st.Step >= len(st.Steps) {
			return bad(AnnotationStep, fmt.Sprintf("is beyond the %d steps", len(st.Steps)))
		}
	}
	if v, ok := base[AnnotationBake]; ok {
		bake, err := time.ParseDuration(v)
		if err != nil || bake < 0 {
			return bad(AnnotationBake, "is not a duration")
		}
		st.Bake = &bake
	}
	sw, cw, ok := strings.Cut(base[AnnotationWeights], "/")
	st.StableWeight, err = strconv.Atoi(sw)
	if err == nil {
		st.CanaryWeight, err = strconv.Atoi(cw)
	}
	if !ok || err != nil || ValidateWeights(st.StableWeight, st.CanaryWeight) != nil {
		return bad(AnnotationWeights, "is not stable/canary percentages adding up to 100")
	}
	for key, t := range map[string]*time.Time{AnnotationStarted: &st.Started, AnnotationUpdated: &st.Updated} {
		if *t, err = time.Parse(time.RFC3339, base[key]); err != nil {
			return bad(key, "is not an RFC 3339 time")
		}
	}
	return st, nil
}
