package githubapi

import (
	"context"
	"time"
)

// finishBudget bounds the final status report when the stage's own context
// has already ended: a deploy that timed out is exactly the one whose
// "failure" must still reach GitHub, but a cancelled job has only seconds.
const finishBudget = 30 * time.Second

// Tracker mirrors one deploy into a GitHub deployment. Its methods never
// return errors: every API failure is passed to warn and the deploy goes
// on, because the deploy's outcome must not depend on GitHub's API. A
// Tracker is not safe for concurrent use.
type Tracker struct {
	client         *Client
	req            Request
	logURL, envURL string
	warn           func(format string, args ...any)

	dep     Deployment
	created bool
}

// NewTracker returns a Tracker for req. A nil client gives a Tracker that
// does nothing, for runs where deployment tracking is off. logURL (the
// workflow run) goes on every status; envURL (the deployed app) only on
// success, since after a failure the environment still serves the old
// version. A nil warn discards warnings.
func NewTracker(client *Client, req Request, logURL, envURL string, warn func(format string, args ...any)) *Tracker {
	if warn == nil {
		warn = func(string, ...any) {}
	}
	return &Tracker{client: client, req: req, logURL: logURL, envURL: envURL, warn: warn}
}

// Start creates the deployment and marks it queued, then in progress, so
// the environment shows a running deploy from the first minute.
func (t *Tracker) Start(ctx context.Context) {
	if t == nil || t.client == nil {
		return
	}
	d, err := t.client.Create(ctx, t.req)
	if err != nil {
		t.warn("GitHub deployment not recorded, the deploy goes on: %v", err)
		return
	}
	t.dep, t.created = d, true
	for _, state := range []string{StateQueued, StateInProgress} {
		s := Status{State: state, LogURL: t.logURL, Description: t.req.Description}
		if err := t.client.SetStatus(ctx, d, s); err != nil {
			t.warn("GitHub deployment status not updated: %v", err)
		}
	}
}

// Finish reports the deploy's outcome: state is usually StateSuccess,
// StateFailure or StateError. Only success deactivates earlier deployments
// to the same environment.
func (t *Tracker) Finish(ctx context.Context, state, description string) {
	if t == nil || t.client == nil {
		return
	}
	if !t.created {
		t.warn("GitHub deployment status %s not reported: no deployment was created", state)
		return
	}
	if ctx.Err() != nil {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(context.WithoutCancel(ctx), finishBudget)
		defer cancel()
	}
	s := Status{State: state, LogURL: t.logURL, Description: description, AutoInactive: state == StateSuccess}
	if state == StateSuccess {
		s.EnvironmentURL = t.envURL
	}
	if err := t.client.SetStatus(ctx, t.dep, s); err != nil {
		t.warn("GitHub deployment status not updated: %v", err)
	}
}

// Deployment returns the deployment Start created, if any, for the stage's
// outputs.
func (t *Tracker) Deployment() (Deployment, bool) {
	if t == nil {
		return Deployment{}, false
	}
	return t.dep, t.created
}

// Client returns the client the Tracker reports with (nil when tracking
// is off), for reports about other deployments of the same repository.
func (t *Tracker) Client() *Client {
	if t == nil {
		return nil
	}
	return t.client
}
