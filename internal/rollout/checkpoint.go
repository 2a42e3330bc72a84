package rollout

// checkpoint marks a point of a deploy where its runner may die (a
// cancelled job, a lost machine, SIGKILL): after the lease is taken,
// after the rollout is recorded, after the canary starts, after each
// weight change, during analysis, during promotion and during a
// rollback. In a deploy it does nothing. The kill-point tests
// (killpoint_test.go) stop their runner process at each point and check
// that resume, abort or a new deploy always leaves the environment on a
// version that passed, with all traffic on it.
//
// The points, in the order a deploy meets them:
//
//	lease-taken          progressive and rolling: the environment's Lease is held
//	rollout-recorded     progressive: the new rollout is on the Lease, nothing moved
//	canary-started       progressive: the canary is up at its first size, no traffic
//	weights-set:step-N   progressive: step N's split is set, its analysis begins
//	                     (a kill some seconds later lands during the analysis)
//	promotion-applied    progressive: the stable Deployment was updated to the new version
//	promotion-traffic    progressive: all traffic is back on the (now new) stable Deployment
//	rolling-back         progressive: a rollback or abort is recorded, nothing moved yet
//	rollback-traffic     progressive: all traffic is back on stable, the canary still up
//	applied              rolling: the manifests are applied, the rollout not yet waited for
var checkpoint = func(point string) {}
