package argocd

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Logger is what Wait reports progress to.
type Logger interface {
	Infof(format string, args ...any)
	Warningf(format string, args ...any)
}

// WaitOptions say what Wait waits for.
type WaitOptions struct {
	// Commit is the Git commit the Application must have reconciled.
	Commit string
	// Image, when set, also counts as arrived: the live objects run this
	// image (repo@sha256:…) at a later commit that kept it.
	Image string
	// Poll is how often the Application is read (default 1 s).
	Poll time.Duration
	// DegradedFor is how long the Application must stay Degraded at the
	// commit before Wait gives up (default 10 s): right after a sync Argo
	// CD can still report the health of what ran before.
	DegradedFor time.Duration
	// Refresh is how long Wait lets the Application sit at another
	// revision before asking Argo CD to refresh it again (default 20 s):
	// a push Argo CD missed, or a refresh the controller dropped.
	Refresh time.Duration
	Log     Logger
}

// TimeoutError is Wait's error when the context ended first; App is the
// Application as last read.
type TimeoutError struct {
	App   *Application
	Cause error
	What  string
}

func (e *TimeoutError) Error() string { return e.What }
func (e *TimeoutError) Unwrap() error { return e.Cause }

// Wait reads the Application until it runs o.Commit (Synced, Healthy, no
// operation running), a sync of that commit failed, or it stays Degraded
// at it for o.DegradedFor; each change of state is logged once, with the resources that are
// not healthy. It returns the Application as last read.
func Wait(ctx context.Context, c Client, o WaitOptions) (*Application, error) {
	if o.Poll <= 0 {
		o.Poll = time.Second
	}
	if o.Refresh <= 0 {
		o.Refresh = 20 * time.Second
	}
	if o.DegradedFor <= 0 {
		o.DegradedFor = 10 * time.Second
	}
	var degradedSince time.Time
	var (
		last      *Application
		lastLine  string
		lastBad   string
		refreshed = time.Now()
		readErrs  int
	)
	for {
		a, err := c.Get(ctx)
		switch {
		case err != nil && ctx.Err() == nil:
			// A read may fail while the API server restarts; give up on
			// the fifth in a row, or at once when it says why (401, 404).
			readErrs++
			if readErrs >= 5 || strings.Contains(err.Error(), "input \"") {
				return last, err
			}
		case err == nil:
			readErrs = 0
			last = a
			if a.Runs(o.Commit, o.Image) {
				if o.Log != nil {
					o.Log.Infof("%s: %s", c, a.Describe())
				}
				return a, nil
			}
			if ferr := a.SyncFailed(o.Commit, o.Image); ferr != nil {
				return a, ferr
			}
			if derr := a.DegradedAt(o.Commit, o.Image); derr == nil {
				degradedSince = time.Time{}
			} else if degradedSince.IsZero() {
				degradedSince = time.Now()
			} else if time.Since(degradedSince) >= o.DegradedFor {
				return a, degradedError(ctx, c, a, derr, time.Since(degradedSince))
			}
			if line := a.Describe(); o.Log != nil && line != lastLine {
				o.Log.Infof("%s: %s", c, line)
				lastLine = line
				// What is unhealthy is read only when the state changed.
				if h := a.Status.Health.Status; h != Healthy && h != "" {
					if bad := strings.Join(c.Unhealthy(ctx, a), "; "); bad != "" && bad != lastBad {
						o.Log.Infof("  not healthy: %s", bad)
						lastBad = bad
					}
				}
			}
			if (a.Status.Revision() != o.Commit || a.Status.Sync.Status != Synced) && time.Since(refreshed) >= o.Refresh {
				if err := c.Refresh(ctx, false); err != nil && ctx.Err() == nil && o.Log != nil {
					o.Log.Warningf("%s: refresh: %v", c, err)
				}
				refreshed = time.Now()
			}
		}
		select {
		case <-ctx.Done():
			return last, timeout(ctx, c, last, o)
		case <-time.After(o.Poll):
		}
	}
}

// degradedError is derr with what the client finds unhealthy, when the
// status itself did not say.
func degradedError(ctx context.Context, c Client, a *Application, derr error, d time.Duration) error {
	msg := fmt.Sprintf("%v (for %s)", derr, d.Round(time.Second))
	if len(a.UnhealthyResources()) == 0 {
		if bad := c.Unhealthy(ctx, a); len(bad) > 0 {
			msg += ": " + strings.Join(bad, "; ")
		}
	}
	return errors.New(msg)
}

func timeout(ctx context.Context, c Client, a *Application, o WaitOptions) error {
	cause := context.Cause(ctx)
	what := "waiting for the Application"
	if errors.Is(cause, context.DeadlineExceeded) {
		what = "timed out " + what
	}
	if a == nil {
		return &TimeoutError{Cause: cause, What: fmt.Sprintf("%s to run %s: it could not be read: %v", what, short(o.Commit), cause)}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s to run %s (Synced and Healthy): it is %s", what, a.Metadata.Name, short(o.Commit), a.Describe())
	// The context is over: the last look at the workloads gets its own
	// few seconds.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if bad := c.Unhealthy(rctx, a); len(bad) > 0 {
		fmt.Fprintf(&b, "; not healthy: %s", strings.Join(bad, "; "))
	}
	if msg := a.Status.Health.Message; msg != "" {
		fmt.Fprintf(&b, "; health message: %s", oneLine(msg))
	}
	return &TimeoutError{App: a, Cause: cause, What: b.String()}
}
