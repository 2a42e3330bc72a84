package progressive

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/gantry-ci/gantry/internal/k8stest"
)

// TestState: a run records the rollout on the environment's Lease; a
// later process (a fresh client) reads it back and carries on.
func TestState(t *testing.T) {
	t.Parallel()
	cp := k8stest.Start(t)
	ns := cp.Namespace(t)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()

	store, err := NewStore(cp.Clientset(), ns, "production")
	if err != nil {
		t.Fatal(err)
	}
	if store.Lease() != ns+"/gantry-deploy-production" {
		t.Errorf("Lease() = %s", store.Lease())
	}
	none, err := store.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if none.Phase != PhaseNone || none.Active() || none.Describe() != "no rollout recorded" {
		t.Errorf("Load without a Lease = %+v (%q), want phase none", none, none.Describe())
	}

	steps, err := ParseSteps(DefaultSteps)
	if err != nil {
		t.Fatal(err)
	}
	started := time.Date(2026, 11, 25, 22, 0, 0, 0, time.UTC)
	st := none
	st.Phase, st.Step, st.Steps = PhaseProgressing, 1, steps
	st.StableWeight, st.CanaryWeight = 50, 50
	st.Stable = Workload{Name: "prompt-builder-blue", Digest: "sha256:" + strings.Repeat("b", 64)}
	st.Canary = Workload{Name: "prompt-builder-green", Digest: "sha256:" + strings.Repeat("9", 64)}
	st.RollbackTarget = st.Stable.Digest
	st.Router = "HTTPRoute prod/prompt-builder (gateway-api)"
	bake := 2 * time.Minute
	st.Bake = &bake
	st.Route = Config{Router: GatewayAPI, Namespace: ns, Route: "prompt-builder", Stable: "prompt-builder-blue", Canary: "prompt-builder-green"}
	st.Analysis = `{"interval":"30s","no-data":"fail"}`
	st.RunURL = "https://github.com/acme/prompt-builder/actions/runs/42"
	st.Started = started
	before := time.Now().Add(-time.Second)
	saved, err := store.Save(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	if saved.Updated.Before(before.Truncate(time.Second)) || saved.Updated.After(time.Now()) {
		t.Errorf("Save set Updated to %v, want now", saved.Updated)
	}

	// A new process: its own client, nothing shared but the cluster.
	cs, err := kubernetes.NewForConfig(cp.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	later, err := NewStore(cs, ns, "production")
	if err != nil {
		t.Fatal(err)
	}
	got, err := later.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !sameState(got, saved) {
		t.Errorf("loaded by a new client:\n%+v\nsaved:\n%+v", got, saved)
	}
	if !got.Active() {
		t.Error("a progressing rollout is not Active")
	}
	want := "progressing at step 2 of 4 (10:5m,50:5m,80:5m,100:5m, bake 2m), 50/50 stable/canary: canary prompt-builder-green (sha256:9999999999999999999999999999999999999999999999999999999999999999) over stable prompt-builder-blue (sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb) via HTTPRoute prod/prompt-builder (gateway-api); rollback target sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb; started 2026-11-25T22:00:00Z, last saved " + saved.Updated.Format(time.RFC3339) + " by https://github.com/acme/prompt-builder/actions/runs/42"
	if got.Describe() != want {
		t.Errorf("Describe() =\n%s\nwant\n%s", got.Describe(), want)
	}
	// What kubectl shows on the Lease.
	lease, err := cs.CoordinationV1().Leases(ns).Get(ctx, "gantry-deploy-production", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{
		"gantry.dev/phase": "progressing", "gantry.dev/step": "1", "gantry.dev/weights": "50/50", "gantry.dev/steps": DefaultSteps, "gantry.dev/started-at": "2026-11-25T22:00:00Z",
		"gantry.dev/bake": "2m", "gantry.dev/traffic-router": "gateway-api", "gantry.dev/route": "prompt-builder",
		"gantry.dev/stable-service": "prompt-builder-blue", "gantry.dev/canary-service": "prompt-builder-green",
	} {
		if lease.Annotations[k] != v {
			t.Errorf("Lease annotation %s = %q, want %q", k, lease.Annotations[k], v)
		}
	}

	// The later run moves on from what it loaded.
	got.Step, got.StableWeight, got.CanaryWeight = 2, 20, 80
	got.Phase, got.Reason = PhasePaused, "waiting for approval"
	next, err := later.Save(ctx, got)
	if err != nil {
		t.Fatal(err)
	}
	if !next.Started.Equal(started) {
		t.Errorf("Save moved Started to %v", next.Started)
	}
	// ... and the first client, still holding the old state, is told.
	st2 := saved
	st2.Phase, st2.Reason = PhaseAborted, "analysis failed"
	_, err = store.Save(ctx, st2)
	var conflict *ConflictError
	if !errors.As(err, &conflict) {
		t.Fatalf("Save over a state changed by another run = %v, want a *ConflictError", err)
	}
	if !sameState(conflict.Current, next) || !strings.Contains(err.Error(), "changed since this run read it (another run?): now paused at step 3 of 4") {
		t.Errorf("conflict: %v; current %+v, want %+v", err, conflict.Current, next)
	}
	// A state made from scratch expects none, and is refused too.
	if _, err := store.Save(ctx, State{Phase: PhaseProgressing, StableWeight: 100}); !errors.As(err, &conflict) {
		t.Errorf("Save of a fresh state over a recorded one = %v, want a *ConflictError", err)
	}
	if cur, err := store.Load(ctx); err != nil || !sameState(cur, next) {
		t.Errorf("after refused saves the state is %+v (%v), want the later run's", cur, err)
	}

	// Invalid states are refused before anything is written.
	bad := next
	bad.StableWeight = 70
	if _, err := later.Save(ctx, bad); err == nil || !strings.Contains(err.Error(), "weights 70/80 (stable/canary) add up to 150") {
		t.Errorf("Save with weights 70/80 = %v", err)
	}
	bad = next
	bad.Phase = "done"
	if _, err := later.Save(ctx, bad); err == nil || !strings.Contains(err.Error(), `phase "done" is not one of`) {
		t.Errorf("Save with phase done = %v", err)
	}
	bad = next
	bad.Step = 4
	if _, err := later.Save(ctx, bad); err == nil || !strings.Contains(err.Error(), "step index 4 is outside the 4 steps") {
		t.Errorf("Save with step 4 = %v", err)
	}

	// Finished: no longer active, still recorded for the next run.
	next.Phase, next.Step, next.StableWeight, next.CanaryWeight, next.Reason = PhasePromoted, 3, 0, 100, ""
	done, err := later.Save(ctx, next)
	if err != nil {
		t.Fatal(err)
	}
	if done.Active() {
		t.Error("a promoted rollout is Active")
	}
	if cur, err := store.Load(ctx); err != nil || cur.Phase != PhasePromoted || cur.Reason != "" {
		t.Errorf("after promotion Load = %+v, %v", cur, err)
	}
}

// TestStateOnDeployLease: the Lease is the one the deploy stage holds
// while it runs. Its renewals are no conflict for Save, and Save leaves
// the hold alone; a Lease without state loads as none.
func TestStateOnDeployLease(t *testing.T) {
	t.Parallel()
	cp := k8stest.Start(t)
	ns := cp.Namespace(t)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	leases := cp.Clientset().CoordinationV1().Leases(ns)

	// As the deploy stage takes it (internal/rollout/lease.go).
	holder, secs, now := "run-7", int32(60), metav1.NewMicroTime(time.Now())
	if _, err := leases.Create(ctx, &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Name: "gantry-deploy-staging", Labels: map[string]string{"app.kubernetes.io/managed-by": "gantry"}},
		Spec:       coordinationv1.LeaseSpec{HolderIdentity: &holder, LeaseDurationSeconds: &secs, AcquireTime: &now, RenewTime: &now},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	store, err := NewStore(cp.Clientset(), ns, "staging")
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Load(ctx)
	if err != nil || st.Phase != PhaseNone {
		t.Fatalf("Load of a Lease without state = %+v, %v; want phase none", st, err)
	}
	st.Phase, st.StableWeight, st.CanaryWeight = PhaseProgressing, 90, 10
	if st, err = store.Save(ctx, st); err != nil {
		t.Fatal(err)
	}

	// The deploy renews its hold between this run's load and save, and
	// again while Save is at it: neither is a conflict.
	renew := func() {
		t.Helper()
		lease, err := leases.Get(ctx, "gantry-deploy-staging", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		now := metav1.NewMicroTime(time.Now().Truncate(time.Microsecond))
		lease.Spec.RenewTime = &now
		if _, err := leases.Update(ctx, lease, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	renew()
	reads := 0
	store.beforeUpdate = func() {
		if reads++; reads == 1 {
			renew()
		}
	}
	st.StableWeight, st.CanaryWeight = 50, 50
	if st, err = store.Save(ctx, st); err != nil {
		t.Fatalf("Save while the deploy renews the Lease: %v", err)
	}
	if reads != 2 {
		t.Errorf("Save read the Lease %d times, want 2 (the renewal made the first update conflict)", reads)
	}
	lease, err := leases.Get(ctx, "gantry-deploy-staging", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if h := lease.Spec.HolderIdentity; h == nil || *h != holder || !lease.Spec.RenewTime.After(now.Time) {
		t.Errorf("Save changed the deploy's hold: holder %v, renewed %v (created %v)", h, lease.Spec.RenewTime, now)
	}
	if lease.Annotations[AnnotationWeights] != "50/50" {
		t.Errorf("weights annotation %q, want 50/50", lease.Annotations[AnnotationWeights])
	}

	// Another run saves its state while this one's Save is at it: the
	// retry sees it and refuses.
	other, err := NewStore(cp.Clientset(), ns, "staging")
	if err != nil {
		t.Fatal(err)
	}
	reads = 0
	store.beforeUpdate = func() {
		if reads++; reads > 1 {
			return
		}
		theirs, err := other.Load(ctx)
		if err != nil {
			t.Fatal(err)
		}
		theirs.Phase, theirs.Reason = PhaseAborted, "aborted by run-8"
		if _, err := other.Save(ctx, theirs); err != nil {
			t.Fatal(err)
		}
	}
	st.StableWeight, st.CanaryWeight = 20, 80
	_, err = store.Save(ctx, st)
	var conflict *ConflictError
	if !errors.As(err, &conflict) || conflict.Current.Phase != PhaseAborted {
		t.Fatalf("Save racing another run's = %v, want a *ConflictError showing the aborted state", err)
	}
	store.beforeUpdate = nil
	if cur, err := store.Load(ctx); err != nil || cur.Phase != PhaseAborted || cur.CanaryWeight != 50 {
		t.Errorf("after the race the state is %+v (%v), want the other run's (aborted at 50/50)", cur, err)
	}
	// Saved without a bake or a route (as an older Gantry did): loaded
	// without them, not as a bake of 0s, so resume knows to take the inputs'.
	if cur, err := store.Load(ctx); err != nil || cur.Bake != nil || cur.Route != (Config{}) {
		t.Errorf("a state saved without bake and route loads with bake %v, route %+v (%v); want none", cur.Bake, cur.Route, err)
	}

	// A value edited by hand is named, with the way out.
	if lease, err = leases.Get(ctx, "gantry-deploy-staging", metav1.GetOptions{}); err != nil {
		t.Fatal(err)
	}
	lease.Annotations[AnnotationWeights] = "half"
	if _, err := leases.Update(ctx, lease, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	_, err = store.Load(ctx)
	want := `Lease ` + ns + `/gantry-deploy-staging: annotation gantry.dev/weights="half" is not stable/canary percentages adding up to 100: fix it, or remove the gantry.dev/ annotations of the Lease to forget the rollout (kubectl annotate lease -n ` + ns + ` gantry-deploy-staging gantry.dev/weights-)`
	if err == nil || err.Error() != want {
		t.Errorf("Load with weights \"half\" = %v\nwant %s", err, want)
	}
}

func TestNewStoreRefusesBadNames(t *testing.T) {
	t.Parallel()
	cs, err := kubernetes.NewForConfig(&rest.Config{Host: "http://127.0.0.1:1"}) // never called
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ ns, env, want string }{
		{"", "production", `input "namespace": "" is not a namespace name`},
		{"prod", "", `input "environment" is empty`},
		{"prod", "Production EU", `input "environment": "Production EU" does not make a Lease name`},
	} {
		if _, err := NewStore(cs, tc.ns, tc.env); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("NewStore(%q, %q) = %v, want %q", tc.ns, tc.env, err, tc.want)
		}
	}
}

// sameState compares what is stored (not the unexported base).
func sameState(a, b State) bool {
	return a.Phase == b.Phase && a.Step == b.Step && a.Steps.String() == b.Steps.String() &&
		a.StableWeight == b.StableWeight && a.CanaryWeight == b.CanaryWeight &&
		a.Stable == b.Stable && a.Canary == b.Canary && a.RollbackTarget == b.RollbackTarget &&
		a.Router == b.Router && a.Reason == b.Reason && a.RunURL == b.RunURL &&
		(a.Bake == nil) == (b.Bake == nil) && (a.Bake == nil || *a.Bake == *b.Bake) && a.Route == b.Route && a.Analysis == b.Analysis &&
		a.Started.Equal(b.Started) && a.Updated.Equal(b.Updated)
}
