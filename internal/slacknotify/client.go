package slacknotify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/slack-go/slack"

	"github.com/gantry-ci/gantry/internal/ghaction"
	"github.com/gantry-ci/gantry/internal/retry"
)

// retrier runs a Slack call under the retry policy until it succeeds, Slack
// says something retrying cannot change, or the attempts run out.
type retrier struct {
	attempts int
	maxWait  time.Duration // a Retry-After longer than this gives up at once
	sleep    func(context.Context, time.Duration) error
	log      ghaction.Logger
	redact   func(string) string // for what Slack (or a proxy) said, before it is logged
}

// Retry policy: 4 attempts, 1 s, 2 s, 4 s apart for 5xx and dropped
// connections (doubling up to 30 s, were there more); a 429 waits what
// Retry-After says, up to a minute (Slack's per-channel limit is about one
// message a second, so it rarely asks for more unless the app is
// misbehaving).
const (
	defaultAttempts = 4
	defaultMaxWait  = time.Minute
	maxBackoff      = 30 * time.Second
)

func (r retrier) do(ctx context.Context, op string, call func(context.Context) error) error {
	p := retry.Policy{
		Attempts:   r.attempts,
		Initial:    time.Second,
		MaxBackoff: maxBackoff,
		MaxWait:    r.maxWait,
		TooLong: func(wait, maxWait time.Duration) string {
			return fmt.Sprintf("Slack asks to wait %s, longer than the %s this step waits", wait, maxWait)
		},
		Sleep: r.sleep,
	}
	if r.log != nil {
		p.Log = redactedLog{r.log, r.redact}
	}
	err := p.Do(ctx, func(ctx context.Context) error {
		if err := call(ctx); err != nil {
			return newCallError(op, err)
		}
		return nil
	}, classify)
	var re *retry.Error
	if !errors.As(err, &re) {
		return err
	}
	e := re.Err.(*callError)
	e.note = re.Reason
	if e.note == "" && re.Stop != nil {
		// The context ended during the call.
		e.note = "stopped: " + re.Stop.Error()
	}
	return e
}

// redactedLog is the retry policy's logger: what Slack (or a proxy) said
// may echo the token or the webhook URL.
type redactedLog struct {
	log    ghaction.Logger
	redact func(string) string
}

func (l redactedLog) Infof(format string, args ...any) {
	s := fmt.Sprintf(format, args...)
	if l.redact != nil {
		s = l.redact(s)
	}
	l.log.Infof("%s", s)
}

// slackErrorsWorthRetrying are the ok:false answers Slack documents as
// transient.
var slackErrorsWorthRetrying = map[string]bool{
	"ratelimited": true, "internal_error": true, "fatal_error": true,
	"service_unavailable": true, "request_timeout": true,
}

// classify says whether err is worth another attempt, and how long Slack
// asked to wait.
func classify(err error) retry.Verdict {
	var (
		rate   *slack.RateLimitedError
		status interface{ HTTPStatusCode() int }
		api    slack.SlackErrorResponse
		netErr net.Error
		urlErr *url.Error
	)
	switch {
	case errors.As(err, &rate):
		// Retry-After: 0 still means "not now".
		return retry.After(max(rate.RetryAfter, time.Second))
	case errors.As(err, &status):
		code := status.HTTPStatusCode()
		return backoffIf(code == http.StatusTooManyRequests || code >= 500)
	case errors.As(err, &api):
		return backoffIf(slackErrorsWorthRetrying[api.Err])
	case errors.As(err, &netErr), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return retry.Backoff()
	}
	return backoffIf(errors.As(err, &urlErr))
}

func backoffIf(transient bool) retry.Verdict {
	if transient {
		return retry.Backoff()
	}
	return retry.Permanent("")
}

// callError reports a failed call as "<op>: <what Slack said> (<hint>;
// <why it stopped>)". It never holds the request: the token travels in the
// request body and the webhook URL is itself the secret.
type callError struct {
	op     string
	detail string
	hint   string
	note   string
	code   string // Slack's error code (channel_not_found ...), when it gave one
	err    error
}

func (e *callError) Error() string {
	s := e.op + ": " + e.detail
	var notes []string
	for _, n := range []string{e.hint, e.note} {
		if n != "" {
			notes = append(notes, n)
		}
	}
	if len(notes) > 0 {
		s += " (" + strings.Join(notes, "; ") + ")"
	}
	return s
}

func (e *callError) Unwrap() error { return e.err }

// hints say how to fix the Slack errors a misconfigured step gets.
var hints = map[string]string{
	"invalid_auth":        `check input "token": a bot token (xoxb-…) of an installed app`,
	"not_authed":          `check input "token"`,
	"account_inactive":    `check input "token": the app or its token was removed`,
	"token_revoked":       `check input "token": the token was revoked`,
	"channel_not_found":   `check input "channel": a channel ID (C0123…) or name; private channels need the bot invited`,
	"not_in_channel":      "invite the bot to the channel (/invite @app), or give the app the chat:write.public scope",
	"is_archived":         "the channel is archived",
	"message_not_found":   `check input "message-ts": pass the ts output of the step that posted, with its channel-id`,
	"cant_update_message": "only the app that posted a message can update it: use the same token",
	"invalid_blocks":      "Slack refused the blocks; please report this as a Gantry bug",
	"msg_too_long":        "Slack refused the message as too long; please report this as a Gantry bug",
}

func newCallError(op string, err error) *callError {
	e := &callError{op: op, err: err}
	var (
		rate   *slack.RateLimitedError
		hook   *webhookError
		status slack.StatusCodeError
		api    slack.SlackErrorResponse
		urlErr *url.Error
	)
	switch {
	case errors.As(err, &rate):
		e.detail = fmt.Sprintf("rate limited (429), Retry-After %s", rate.RetryAfter)
	case errors.As(err, &hook):
		e.detail = hook.Error()
		e.code = hook.reason
		e.hint = hints[hook.reason]
		switch hook.reason {
		case "no_service", "invalid_token", "no_team", "team_disabled":
			e.hint = `check input "webhook": Slack does not know this webhook (it may have been revoked)`
		}
	case errors.As(err, &status):
		e.detail = fmt.Sprintf("Slack answered %d %s", status.Code, http.StatusText(status.Code))
	case errors.As(err, &api):
		e.detail, e.code = api.Err, api.Err
		e.hint = hints[api.Err]
		if api.Err == "missing_scope" {
			e.hint = "the app needs the " + orUnknown(api.Needed) + " scope: add it under OAuth & Permissions and reinstall the app"
		}
	case errors.As(err, &urlErr):
		// url.Error repeats the request URL; the cause is what matters.
		e.detail = urlErr.Err.Error()
	default:
		e.detail = err.Error()
	}
	return e
}

func orUnknown(s string) string {
	if s == "" {
		return "requested"
	}
	return s
}

// slackCode is Slack's error code in err ("" when there is none).
func slackCode(err error) string {
	var e *callError
	if errors.As(err, &e) {
		return e.code
	}
	return ""
}

// webAPI is the part of Slack's Web API a run uses, with retries.
type webAPI struct {
	c     *slack.Client
	retry retrier
}

func newWebAPI(token, apiURL string, hc *http.Client, r retrier) webAPI {
	return webAPI{c: slack.New(token, slack.OptionAPIURL(apiURL), slack.OptionHTTPClient(hc)), retry: r}
}

func msgOptions(m Message) []slack.MsgOption {
	return []slack.MsgOption{
		slack.MsgOptionText(m.Text, false),
		slack.MsgOptionBlocks(m.Blocks...),
		slack.MsgOptionAttachments(m.Attachments...),
	}
}

// post posts m to channel (as a reply when threadTS is set) and returns the
// channel's ID and the message's ts.
func (w webAPI) post(ctx context.Context, channel, threadTS string, m Message) (channelID, ts string, err error) {
	opts := append(msgOptions(m), slack.MsgOptionDisableLinkUnfurl(), slack.MsgOptionDisableMediaUnfurl())
	if threadTS != "" {
		opts = append(opts, slack.MsgOptionTS(threadTS))
	}
	err = w.retry.do(ctx, "chat.postMessage", func(ctx context.Context) error {
		var err error
		channelID, ts, err = w.c.PostMessageContext(ctx, channel, opts...)
		return err
	})
	return channelID, ts, err
}

// update replaces the message at ts with m.
func (w webAPI) update(ctx context.Context, channel, ts string, m Message) (channelID string, err error) {
	err = w.retry.do(ctx, "chat.update", func(ctx context.Context) error {
		var err error
		channelID, _, _, err = w.c.UpdateMessageContext(ctx, channel, ts, msgOptions(m)...)
		return err
	})
	return channelID, err
}

// read returns the message at ts, or nil when the channel has none there.
func (w webAPI) read(ctx context.Context, channel, ts string) (*slack.Message, error) {
	var msg *slack.Message
	err := w.retry.do(ctx, "conversations.history", func(ctx context.Context) error {
		resp, err := w.c.GetConversationHistoryContext(ctx, &slack.GetConversationHistoryParameters{
			ChannelID: channel, Latest: ts, Oldest: ts, Inclusive: true, Limit: 1,
		})
		if err != nil {
			return err
		}
		msg = nil
		for i := range resp.Messages {
			if resp.Messages[i].Timestamp == ts {
				msg = &resp.Messages[i]
			}
		}
		return nil
	})
	return msg, err
}

// webhookError is a refused incoming-webhook post. Slack answers webhooks
// with a short reason in the body (no_service, invalid_payload, …).
type webhookError struct {
	code   int
	reason string
}

func (e *webhookError) Error() string {
	s := fmt.Sprintf("Slack answered %d %s", e.code, http.StatusText(e.code))
	if e.reason != "" {
		s += ": " + e.reason
	}
	return s
}

// HTTPStatusCode lets classify treat it like slack-go's StatusCodeError.
func (e *webhookError) HTTPStatusCode() int { return e.code }

// postWebhook posts m to an incoming webhook. slack-go's PostWebhook would
// do, but its errors quote the request URL — which for a webhook is the
// secret — and drop Slack's reason; this one reports the reason and never
// the URL, and maps a 429 to slack-go's RateLimitedError so one retry
// policy serves both paths.
func postWebhook(ctx context.Context, hc *http.Client, hook string, m Message) error {
	payload := struct {
		Text        string             `json:"text"`
		Blocks      []slack.Block      `json:"blocks"`
		Attachments []slack.Attachment `json:"attachments,omitempty"`
		UnfurlLinks bool               `json:"unfurl_links"`
		UnfurlMedia bool               `json:"unfurl_media"`
	}{Text: m.Text, Blocks: m.Blocks, Attachments: m.Attachments}
	body, err := json.Marshal(payload)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, hook, bytes.NewReader(body))
	if err != nil {
		return errors.New("the webhook URL is not a valid URL")
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		var urlErr *url.Error
		if errors.As(err, &urlErr) {
			// Keep the cause (and its net.Error for classify), drop the URL.
			return urlErr.Err
		}
		return err
	}
	defer resp.Body.Close()
	text, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode == http.StatusOK {
		return nil
	}
	if resp.StatusCode == http.StatusTooManyRequests {
		if s, err := strconv.Atoi(strings.TrimSpace(resp.Header.Get("Retry-After"))); err == nil {
			return &slack.RateLimitedError{RetryAfter: time.Duration(s) * time.Second}
		}
	}
	return &webhookError{code: resp.StatusCode, reason: clip(oneLine(string(text)), 100)}
}

// sleep waits d or until ctx ends.
var sleep = retry.Sleep
