// Package progressive is the traffic layer of Gantry's progressive deploy
// (blue-green with canary weights): a Router moves a share of an
// environment's traffic from the stable Service to the canary Service, by
// the backendRef weights of a Gateway API HTTPRoute (HTTPRoute) or by an
// ingress-nginx canary Ingress (Nginx), and a Store keeps the rollout's
// State on the environment's Lease so that a later run, after the runner
// of this one died, can resume or abort it. Steps is the schedule.
//
// The package only moves traffic and records state; when to move
// (analysis, promotion) is the caller's. A deploy runs roughly:
//
//	steps, err := progressive.ParseSteps(in.Steps)
//	router, err := progressive.New(dyn, progressive.Config{Router: in.Router, Namespace: ns,
//		Route: in.Route, Stable: "app-blue", Canary: "app-green"})
//	err = router.Check(ctx)
//	store, err := progressive.NewStore(clientset, ns, in.Environment)
//	st, err := store.Load(ctx)
//	if st.Active() {
//		return fmt.Errorf("a half-finished rollout was found: %s: use action: resume or abort", st.Describe())
//	}
//	st.Phase, st.Steps = progressive.PhaseProgressing, steps
//	for i, step := range steps {
//		err = router.SetWeights(ctx, 100-step.Weight, step.Weight)
//		st.Step, st.StableWeight, st.CanaryWeight = i, 100-step.Weight, step.Weight
//		st, err = store.Save(ctx, st) // a *ConflictError: another run took over
//		// hold step.Hold, analyse; on failure SetWeights(ctx, 100, 0)
//	}
//
// The package is silent: it returns errors that name the input or object
// at fault and the fix, and logs nothing.
package progressive
