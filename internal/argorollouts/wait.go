package argorollouts

import (
	"context"
	"errors"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

// DegradedError is Wait's error when the Rollout turned Degraded before
// the awaited state: aborted (by Abort or a failed analysis), past its
// progress deadline, or an invalid spec. Message is the controller's.
type DegradedError struct {
	Rollout string // namespace/name
	Message string
	Status  Status
}

func (e *DegradedError) Error() string {
	return fmt.Sprintf("Rollout %s is Degraded: %s", e.Rollout, e.Message)
}

// Wait reads the Rollout every poll interval until until returns true for
// its status, and returns that status. It gives up early, returning a
// *DegradedError, when the Rollout is Degraded and until does not accept
// that (an aborted update counts once its canary is scaled down, so a
// caller can wait for that with Aborted); when the Rollout or its CRD is gone; and after timeout, with the
// last status seen and, when the controller never reacted, a hint that it
// may not be running. The phase Wait passes to until is corrected for
// writes the controller has not processed yet (see Phase), so a Wait right
// after SetImage, Promote or Retry never sees the state before them.
func (d *Driver) Wait(ctx context.Context, until func(Status) bool, timeout time.Duration) (Status, error) {
	if until == nil {
		return Status{}, errors.New("argorollouts: Wait needs a condition")
	}
	if timeout <= 0 {
		return Status{}, fmt.Errorf("argorollouts: Wait needs a positive timeout, got %v", timeout)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last Status
	var lastErr error
	logged := ""
	tick := time.NewTicker(d.poll)
	defer tick.Stop()
	for {
		st, err := d.Status(ctx)
		switch {
		case err == nil:
			last, lastErr = st, nil
			if line := st.String(); line != logged {
				d.log.Infof("%s: %s", d, line)
				logged = line
			}
			if until(st) {
				return st, nil
			}
			if st.Phase == PhaseDegraded && !st.abortSettling() {
				return st, &DegradedError{Rollout: d.namespace + "/" + d.name, Message: st.Message, Status: st}
			}
		case errors.Is(err, ErrCRDsMissing), isNotFound(err), ctx.Err() == nil && permanent(err):
			return last, err
		default:
			// A dropped connection or an overloaded API server: try again
			// until the deadline.
			lastErr = err
		}
		select {
		case <-ctx.Done():
			return last, d.timeoutError(timeout, last, lastErr, ctx.Err())
		case <-tick.C:
		}
	}
}

func (d *Driver) timeoutError(timeout time.Duration, last Status, lastErr, ctxErr error) error {
	if !errors.Is(ctxErr, context.DeadlineExceeded) {
		return fmt.Errorf("waiting for %s: %w", d, ctxErr)
	}
	if last.Name == "" {
		return fmt.Errorf("waiting for %s: no status read within %v: %v", d, timeout, lastErr)
	}
	msg := fmt.Sprintf("%s did not reach the awaited state within %v; last seen: %s", d, timeout, last)
	if last.ObservedGeneration < last.Generation {
		msg += fmt.Sprintf(". The Argo Rollouts controller has not processed generation %d (it has seen %d): check that it is running and watches namespace %s", last.Generation, last.ObservedGeneration, d.namespace)
	}
	if lastErr != nil {
		msg += fmt.Sprintf(" (last read failed: %v)", lastErr)
	}
	return errors.New(msg)
}

func isNotFound(err error) bool {
	return apierrors.IsNotFound(err) || errors.Is(err, ErrRolloutNotFound)
}

// permanent: errors that waiting will not fix.
func permanent(err error) bool {
	return apierrors.IsForbidden(err) || apierrors.IsUnauthorized(err) || apierrors.IsBadRequest(err) || apierrors.IsInvalid(err)
}

// Conditions for Wait.

// Healthy is true once the Rollout is Healthy: the desired pod template is
// stable and available, every step done.
func Healthy(s Status) bool { return s.Phase == PhaseHealthy }

// Degraded is true once the Rollout is Degraded, e.g. after Abort.
func Degraded(s Status) bool { return s.Phase == PhaseDegraded }

// Aborted is true once an aborted update has settled: Degraded, and the
// canary ReplicaSet scaled down to no pods, so all traffic is on stable.
func Aborted(s Status) bool {
	return s.Phase == PhaseDegraded && s.Aborted && !s.abortSettling()
}

// abortSettling: aborted, but the canary still has pods.
func (s Status) abortSettling() bool {
	return s.Aborted && s.Canary.Hash != "" && (s.Canary.Desired > 0 || s.Canary.Replicas > 0)
}

// PausedAt returns a condition that is true when the Rollout is paused at
// the canary step of index step (0-based) by the controller (a pause step
// or an inconclusive analysis), not by Pause.
func PausedAt(step int) func(Status) bool {
	return func(s Status) bool {
		return s.Phase == PhasePaused && s.Step == step && len(s.PauseReasons) > 0
	}
}
