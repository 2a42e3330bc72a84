// Package retry is Gantry's one retry policy for calls to services that
// fail now and then or ask to be called back later: GitHub's API, Slack,
// OCI registries.
//
// A Policy owns the loop and the arithmetic: how many attempts, the
// exponential backoff between them (1 s, 2 s, 4 s … up to a cap, from
// github.com/cenkalti/backoff), honouring a server's own hint (Retry-After,
// a rate limit's reset time) up to a longest acceptable wait, stopping when
// the context ends, and a log line before every wait. What is worth
// retrying, and why not, stays with each caller: its classifier turns a
// failed attempt into a Verdict.
package retry

import (
	"cmp"
	"context"
	"fmt"
	"time"

	"github.com/cenkalti/backoff/v5"
)

// Logger receives the line logged before every wait; ghaction.Logger is one.
type Logger interface {
	Infof(format string, args ...any)
}

// Policy says how a call is retried. The zero value makes one attempt;
// set Attempts for more.
type Policy struct {
	// Attempts is how many times the call is made at most, the first
	// included; less than 1 means 1.
	Attempts int
	// Initial is the first backoff wait, doubled after every failed attempt;
	// zero means a second. There is no jitter: each job runs one client, so
	// there is no herd of clients to spread.
	Initial time.Duration
	// MaxBackoff caps the doubling; zero means MaxWait.
	MaxBackoff time.Duration
	// MaxWait is the longest wait a server may ask for. A longer hint ends
	// the retries at once: asking again early only earns another refusal.
	// Zero means a minute.
	MaxWait time.Duration
	// TooLong says, in the caller's words, why a hint longer than MaxWait
	// ended the retries; nil says "the server asks to wait …".
	TooLong func(wait, maxWait time.Duration) string
	// Sleep waits between attempts; it must return ctx's error when ctx
	// ends first. Nil means Sleep. Tests pass one that records the waits
	// and returns at once.
	Sleep func(ctx context.Context, d time.Duration) error
	// Log gets a line before every wait: what failed, the wait, and
	// "attempt N of M". Nil logs nothing.
	Log Logger
}

// Verdict is a classifier's judgement of a failed attempt: retry after the
// policy's backoff, retry after the server's hint, or stop. The zero
// Verdict stops without a reason.
type Verdict struct {
	retry  bool
	hinted bool
	hint   time.Duration
	reason string
}

// Backoff retries after the policy's exponential backoff.
func Backoff() Verdict { return Verdict{retry: true} }

// After retries after the wait the server asked for (Retry-After, a rate
// limit's reset). A negative wait is no wait; one longer than the policy's
// MaxWait ends the retries.
func After(wait time.Duration) Verdict { return Verdict{retry: true, hinted: true, hint: max(wait, 0)} }

// Permanent stops: retrying cannot change the outcome. reason, when not
// empty, says why (or what the user can change) in the final error.
func Permanent(reason string) Verdict { return Verdict{reason: reason} }

// Error is how Do reports that the call did not succeed.
type Error struct {
	// Err is the last attempt's error, as the call returned it.
	Err error
	// Attempts is how many attempts were made.
	Attempts int
	// Reason says why the retries ended: "gave up after 4 attempts",
	// "stopped waiting to retry: context canceled", the refused hint, or the
	// classifier's reason. It is empty when Err says it all (a Permanent
	// verdict without a reason, or the context ending during the call).
	Reason string
	// Stop is the context's error when the context ended the retries,
	// during a call or a wait; nil otherwise.
	Stop error
}

func (e *Error) Error() string {
	if e.Reason == "" {
		return e.Err.Error()
	}
	return fmt.Sprintf("%s (%s)", e.Err, e.Reason)
}

// Unwrap gives errors.Is and errors.As both the call's error and, when the
// context ended the retries, the context's.
func (e *Error) Unwrap() []error {
	if e.Stop != nil {
		return []error{e.Err, e.Stop}
	}
	return []error{e.Err}
}

// Do runs call until it succeeds, classify stops it, the attempts run out,
// the server asks for a wait longer than MaxWait, or ctx ends. It returns
// nil or an *Error holding the last attempt's error. A nil classify retries
// every error with backoff.
//
// The backoff follows the attempt number, whatever the earlier waits were:
// a hint of 7 s on the first attempt and a server error on the second wait
// 7 s, then 2 s. (backoff.Retry would start over after a hint, and cannot
// have its timer replaced, so the loop is ours and the arithmetic is the
// library's.)
func (p Policy) Do(ctx context.Context, call func(context.Context) error, classify func(error) Verdict) error {
	attempts := max(p.Attempts, 1)
	maxWait := cmp.Or(p.MaxWait, time.Minute)
	sleep := p.Sleep
	if sleep == nil {
		sleep = Sleep
	}
	b := &backoff.ExponentialBackOff{
		InitialInterval:     cmp.Or(p.Initial, time.Second),
		RandomizationFactor: 0,
		Multiplier:          2,
		MaxInterval:         min(cmp.Or(p.MaxBackoff, maxWait), maxWait),
	}
	b.Reset()
	for attempt := 1; ; attempt++ {
		err := call(ctx)
		if err == nil {
			return nil
		}
		fail := &Error{Err: err, Attempts: attempt}
		if ctx.Err() != nil {
			// The call failed because the context ended (its error says
			// so), or just as it ended: either way, no more attempts.
			fail.Stop = context.Cause(ctx)
			return fail
		}
		v := Backoff()
		if classify != nil {
			v = classify(err)
		}
		wait := b.NextBackOff()
		if !v.retry {
			fail.Reason = v.reason
			return fail
		}
		if v.hinted {
			wait = v.hint
			if wait > maxWait {
				fail.Reason = p.tooLong(wait, maxWait)
				return fail
			}
		}
		if attempt >= attempts {
			fail.Reason = fmt.Sprintf("gave up after %d %s", attempt, plural(attempt, "attempt"))
			return fail
		}
		if p.Log != nil {
			p.Log.Infof("%s; retrying in %s (attempt %d of %d)", err, round(wait), attempt+1, attempts)
		}
		if serr := sleep(ctx, wait); serr != nil {
			fail.Reason = "stopped waiting to retry: " + serr.Error()
			fail.Stop = serr
			return fail
		}
	}
}

func (p Policy) tooLong(wait, maxWait time.Duration) string {
	if p.TooLong != nil {
		return p.TooLong(wait, maxWait)
	}
	return fmt.Sprintf("the server asks to wait %s, longer than the %s allowed", round(wait), maxWait)
}

// Sleep waits d, or until ctx ends and then returns ctx's error.
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// round shows a wait the way a person reads it: whole seconds, or
// milliseconds under a second.
func round(d time.Duration) time.Duration {
	if d < time.Second {
		return d.Round(time.Millisecond)
	}
	return d.Round(time.Second)
}

func plural(n int, word string) string {
	if n == 1 {
		return word
	}
	return word + "s"
}
