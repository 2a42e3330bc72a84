package retry_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gantry-ci/gantry/internal/retry"
)

// recorder is the Logger and the Sleep: it keeps the lines and the waits,
// and returns at once.
type recorder struct {
	lines []string
	waits []time.Duration
}

func (r *recorder) Infof(format string, args ...any) {
	r.lines = append(r.lines, fmt.Sprintf(format, args...))
}

func (r *recorder) sleep(ctx context.Context, d time.Duration) error {
	r.waits = append(r.waits, d)
	return ctx.Err()
}

func (r *recorder) policy(attempts int) retry.Policy {
	return retry.Policy{Attempts: attempts, MaxWait: time.Minute, Sleep: r.sleep, Log: r}
}

// failing returns a call that fails with errs in turn, then succeeds, and
// counts its calls.
func failing(calls *int, errs ...error) func(context.Context) error {
	return func(context.Context) error {
		*calls++
		if *calls <= len(errs) {
			return errs[*calls-1]
		}
		return nil
	}
}

var (
	errBusy  = errors.New("503 Service Unavailable")
	errLimit = errors.New("429 Too Many Requests")
	errAuth  = errors.New("401 Unauthorized")
)

// classify is a caller's classifier: 429 honours the hint it carries, 503
// backs off, anything else is final.
func classify(hint time.Duration) func(error) retry.Verdict {
	return func(err error) retry.Verdict {
		switch {
		case errors.Is(err, errLimit):
			return retry.After(hint)
		case errors.Is(err, errBusy):
			return retry.Backoff()
		}
		return retry.Permanent(`check input "token"`)
	}
}

func asError(t *testing.T, err error) *retry.Error {
	t.Helper()
	var re *retry.Error
	if !errors.As(err, &re) {
		t.Fatalf("error %v (%T), want a *retry.Error", err, err)
	}
	return re
}

func TestSuccessAfterRetries(t *testing.T) {
	r := &recorder{}
	calls := 0
	err := r.policy(4).Do(t.Context(), failing(&calls, errBusy, errBusy), classify(0))
	if err != nil || calls != 3 {
		t.Fatalf("Do = %v after %d calls, want nil after 3", err, calls)
	}
	if want := []time.Duration{time.Second, 2 * time.Second}; !slices.Equal(r.waits, want) {
		t.Errorf("waited %v, want %v", r.waits, want)
	}
	want := []string{
		"503 Service Unavailable; retrying in 1s (attempt 2 of 4)",
		"503 Service Unavailable; retrying in 2s (attempt 3 of 4)",
	}
	if !slices.Equal(r.lines, want) {
		t.Errorf("log:\n got %q\nwant %q", r.lines, want)
	}
}

func TestAttemptsExhausted(t *testing.T) {
	r := &recorder{}
	calls := 0
	err := r.policy(4).Do(t.Context(), failing(&calls, errBusy, errBusy, errBusy, errBusy, errBusy), classify(0))
	re := asError(t, err)
	if calls != 4 || re.Attempts != 4 || re.Err != errBusy {
		t.Errorf("%d calls, Error %+v; want 4 attempts ending in the last error", calls, re)
	}
	if got, want := err.Error(), "503 Service Unavailable (gave up after 4 attempts)"; got != want {
		t.Errorf("error %q, want %q", got, want)
	}
	if want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second}; !slices.Equal(r.waits, want) {
		t.Errorf("waited %v, want %v", r.waits, want)
	}
	if len(r.lines) != 3 || !strings.HasSuffix(r.lines[2], "(attempt 4 of 4)") {
		t.Errorf("log %q, want a line before each of the 3 waits", r.lines)
	}
	if !errors.Is(err, errBusy) {
		t.Error("errors.Is does not find the call's error")
	}
}

// The backoff doubles up to MaxBackoff and never exceeds MaxWait.
func TestBackoffCap(t *testing.T) {
	for _, tt := range []struct {
		name       string
		maxBackoff time.Duration
		maxWait    time.Duration
		want       []time.Duration
	}{
		{"MaxBackoff", 5 * time.Second, time.Minute, []time.Duration{1, 2, 4, 5, 5}},
		{"MaxWait", 0, 3 * time.Second, []time.Duration{1, 2, 3, 3, 3}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := &recorder{}
			p := retry.Policy{Attempts: 6, MaxBackoff: tt.maxBackoff, MaxWait: tt.maxWait, Sleep: r.sleep}
			calls := 0
			err := p.Do(t.Context(), failing(&calls, slices.Repeat([]error{errBusy}, 10)...), nil)
			if re := asError(t, err); re.Attempts != 6 {
				t.Errorf("%d attempts, want 6", re.Attempts)
			}
			var want []time.Duration
			for _, s := range tt.want {
				want = append(want, s*time.Second)
			}
			if !slices.Equal(r.waits, want) {
				t.Errorf("waited %v, want %v", r.waits, want)
			}
		})
	}
}

// A server's hint replaces the backoff for that wait only: the backoff
// still follows the attempt number.
func TestHintHonoured(t *testing.T) {
	r := &recorder{}
	calls := 0
	err := r.policy(4).Do(t.Context(), failing(&calls, errLimit, errBusy), classify(7*time.Second))
	if err != nil || calls != 3 {
		t.Fatalf("Do = %v after %d calls, want nil after 3", err, calls)
	}
	if want := []time.Duration{7 * time.Second, 2 * time.Second}; !slices.Equal(r.waits, want) {
		t.Errorf("waited %v, want %v", r.waits, want)
	}
	if !strings.Contains(r.lines[0], "429 Too Many Requests; retrying in 7s (attempt 2 of 4)") {
		t.Errorf("log %q", r.lines)
	}

	// A hint in the past (a reset time already gone) is no wait at all.
	r = &recorder{}
	calls = 0
	if err := r.policy(2).Do(t.Context(), failing(&calls, errLimit), classify(-3*time.Second)); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(r.waits, []time.Duration{0}) {
		t.Errorf("waited %v for a negative hint, want 0", r.waits)
	}
}

func TestHintBeyondCap(t *testing.T) {
	r := &recorder{}
	calls := 0
	err := r.policy(4).Do(t.Context(), failing(&calls, errLimit), classify(time.Hour))
	re := asError(t, err)
	if calls != 1 || len(r.waits) != 0 || len(r.lines) != 0 {
		t.Errorf("%d calls, waits %v, log %q; want one call and no wait", calls, r.waits, r.lines)
	}
	if want := "429 Too Many Requests (the server asks to wait 1h0m0s, longer than the 1m0s allowed)"; err.Error() != want {
		t.Errorf("error %q, want %q", err, want)
	}
	if re.Attempts != 1 || re.Stop != nil {
		t.Errorf("Error %+v", re)
	}

	// The caller says it in its own words.
	p := r.policy(4)
	p.TooLong = func(wait, maxWait time.Duration) string {
		return fmt.Sprintf("Slack asks to wait %s, longer than the %s this step waits", wait, maxWait)
	}
	calls = 0
	err = p.Do(t.Context(), failing(&calls, errLimit), classify(time.Hour))
	if re := asError(t, err); re.Reason != "Slack asks to wait 1h0m0s, longer than the 1m0s this step waits" {
		t.Errorf("reason %q", re.Reason)
	}

	// A hint of exactly MaxWait is waited out.
	r = &recorder{}
	calls = 0
	if err := r.policy(4).Do(t.Context(), failing(&calls, errLimit), classify(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(r.waits, []time.Duration{time.Minute}) {
		t.Errorf("waited %v, want 1m", r.waits)
	}
}

func TestCancelDuringWait(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	r := &recorder{}
	p := r.policy(4)
	p.Sleep = func(ctx context.Context, d time.Duration) error {
		cancel() // the job is cancelled while waiting to retry
		return ctx.Err()
	}
	calls := 0
	err := p.Do(ctx, failing(&calls, errBusy, errBusy), classify(0))
	re := asError(t, err)
	if calls != 1 {
		t.Errorf("%d calls after cancellation, want 1", calls)
	}
	if want := "503 Service Unavailable (stopped waiting to retry: context canceled)"; err.Error() != want {
		t.Errorf("error %q, want %q", err, want)
	}
	if !errors.Is(err, context.Canceled) || !errors.Is(err, errBusy) || re.Stop != context.Canceled {
		t.Errorf("error %v: want both context.Canceled and the call's error in its chain", err)
	}

	// With the real Sleep, cancelling ends a long wait at once.
	ctx, cancel = context.WithCancel(t.Context())
	time.AfterFunc(20*time.Millisecond, cancel)
	p = retry.Policy{Attempts: 2, MaxWait: time.Hour}
	start := time.Now()
	calls = 0
	err = p.Do(ctx, failing(&calls, errLimit), classify(time.Hour))
	if !errors.Is(err, context.Canceled) || time.Since(start) > 10*time.Second {
		t.Errorf("Do = %v after %s, want context.Canceled at once", err, time.Since(start))
	}
}

// A call that fails because the context ended is not classified, retried
// or noted again: its error says what happened.
func TestContextEndsDuringCall(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	r := &recorder{}
	calls := 0
	err := r.policy(4).Do(ctx, func(ctx context.Context) error {
		calls++
		cancel()
		return ctx.Err()
	}, func(error) retry.Verdict {
		t.Error("classified an error after the context ended")
		return retry.Backoff()
	})
	re := asError(t, err)
	if calls != 1 || len(r.waits) != 0 || re.Reason != "" || re.Stop != context.Canceled {
		t.Errorf("%d calls, waits %v, Error %+v; want one call, no wait, no reason, Stop set", calls, r.waits, re)
	}
	if err.Error() != "context canceled" {
		t.Errorf("error %q, want the call's own", err)
	}
}

func TestNonRetryableReturnedAtOnce(t *testing.T) {
	r := &recorder{}
	calls := 0
	err := r.policy(4).Do(t.Context(), failing(&calls, errAuth, errAuth), classify(0))
	re := asError(t, err)
	if calls != 1 || len(r.waits) != 0 || len(r.lines) != 0 {
		t.Errorf("%d calls, waits %v, log %q; want one call", calls, r.waits, r.lines)
	}
	if re.Err != errAuth || re.Attempts != 1 || err.Error() != `401 Unauthorized (check input "token")` {
		t.Errorf("error %q (%+v), want the 401 with the classifier's reason", err, re)
	}

	// Without a reason, the error is the call's own.
	calls = 0
	err = r.policy(4).Do(t.Context(), failing(&calls, errAuth), func(error) retry.Verdict { return retry.Permanent("") })
	if err.Error() != "401 Unauthorized" {
		t.Errorf("error %q, want the call's own", err)
	}
}

// The zero Policy makes a single attempt.
func TestZeroPolicy(t *testing.T) {
	calls := 0
	err := retry.Policy{}.Do(t.Context(), failing(&calls, errBusy, errBusy), nil)
	if re := asError(t, err); calls != 1 || re.Reason != "gave up after 1 attempt" {
		t.Errorf("%d calls, Error %+v; want one attempt", calls, re)
	}
}
