// Package slacknotify is Gantry's notify stage: one Slack message per
// workflow run, updated in place as the run moves through its stages (with
// a bot token) or posted (with an incoming webhook). The message shows the
// stages so far with their results, the commit, the image and links, with a
// colour for the run's state. A Slack outage never fails the pipeline: after
// the last retry the step warns and succeeds, unless fail-on-error is set.
package slacknotify

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gantry-ci/gantry/internal/ghaction"
)

// Inputs are gantry-notify's inputs (actions/notify/action.yml).
type Inputs struct {
	Token       string        `input:"token" secret:"true"`
	Webhook     string        `input:"webhook" secret:"true"`
	Channel     string        `input:"channel"`
	Status      string        `input:"status"`
	Stage       string        `input:"stage"`
	Environment string        `input:"environment"`
	Image       string        `input:"image"`
	MessageTS   string        `input:"message-ts"`
	Thread      bool          `input:"thread" default:"false"`
	Text        string        `input:"text"`
	Fields      []string      `input:"fields" list:"lines"`
	FailOnError bool          `input:"fail-on-error" default:"false"`
	APIURL      string        `input:"api-url" default:"https://slack.com/api/"`
	Timeout     time.Duration `input:"timeout" default:"2m"`

	// Git is the run the message is about (repository, workflow, commit,
	// ref, actor, run URL).
	Git RunContext `input:"-"`
	// Log receives progress lines and the warning when Slack cannot be
	// reached; nil discards them.
	Log ghaction.Logger `input:"-"`
	// HTTPClient replaces the default client (30 s per request).
	HTTPClient *http.Client `input:"-"`
	// Sleep waits between retries; nil waits for real. Tests inject one
	// that records the waits and returns at once.
	Sleep func(ctx context.Context, d time.Duration) error `input:"-"`
	// Now is the clock stage durations are measured with; nil is time.Now.
	Now func() time.Time `input:"-"`
}

// Outputs are gantry-notify's results. With a webhook, Slack says nothing
// about the message it posted, so all three are empty.
type Outputs struct {
	// TS is the run's message, for a later step's message-ts. When Slack
	// could not be reached it is the message-ts this step was given, so
	// the chain of updates goes on with the next job.
	TS string `output:"ts"`
	// ChannelID is the channel's ID (chat.update needs the ID, not #name).
	ChannelID string `output:"channel-id"`
	// ThreadTS is the thread holding this step's details (thread: true):
	// the run's message, as Slack's thread_ts names it.
	ThreadTS string `output:"thread-ts"`

	// Posted reports whether Slack took the message.
	Posted bool `output:"-"`
	// Message is the run's message as rendered (also when not posted).
	Message Message `output:"-"`
}

// Validate checks the inputs that need no Slack, reporting every bad input
// at once.
func (in *Inputs) Validate() error {
	var errs []error
	_, err := parseFields(in.Fields)
	errs = append(errs, err)
	if u, err := url.Parse(in.APIURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		errs = append(errs, fmt.Errorf(`input "api-url": %q is not an http(s) URL: leave it empty for https://slack.com/api/`, in.APIURL))
	}
	if in.Webhook != "" {
		// Never quote the value: the webhook URL is the secret.
		if u, err := url.Parse(in.Webhook); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			errs = append(errs, errors.New(`input "webhook" is not an http(s) URL (value not shown): use the Incoming Webhook URL Slack gave, https://hooks.slack.com/services/…`))
		}
	}
	if in.Token != "" && strings.TrimSpace(in.Channel) == "" {
		errs = append(errs, errors.New(`input "channel" is required with a token: the channel ID (C0123…, e.g. an earlier step's channel-id output) or #name`))
	}
	return errors.Join(errs...)
}

// Run is gantry-notify. It returns an error for inputs that can never work;
// a Slack failure (after retries) is a warning and a nil error, unless
// FailOnError.
func Run(ctx context.Context, in Inputs) (Outputs, error) {
	if in.Log == nil {
		in.Log = ghaction.Discard{}
	}
	if in.Sleep == nil {
		in.Sleep = sleep
	}
	if in.Now == nil {
		in.Now = time.Now
	}
	if in.HTTPClient == nil {
		in.HTTPClient = &http.Client{Timeout: 30 * time.Second}
	}
	if in.APIURL == "" {
		in.APIURL = "https://slack.com/api/"
	}
	if !strings.HasSuffix(in.APIURL, "/") {
		// slack-go appends the method name to the base as is.
		in.APIURL += "/"
	}
	if err := in.Validate(); err != nil {
		return Outputs{}, err
	}
	fields, _ := parseFields(in.Fields)
	if in.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, in.Timeout)
		defer cancel()
	}
	n := &notifier{in: in, fields: fields}
	n.retry = retrier{attempts: defaultAttempts, maxWait: defaultMaxWait, sleep: in.Sleep, log: in.Log, redact: n.redact}
	// Outputs pass the message on even when this step cannot reach Slack.
	n.out = Outputs{TS: in.MessageTS, ChannelID: in.Channel, ThreadTS: ""}
	if in.MessageTS == "" || !looksLikeID(in.Channel) {
		n.out.ChannelID = ""
	}

	var err error
	switch {
	case in.Token != "":
		err = n.viaWebAPI(ctx)
	case in.Webhook != "":
		n.out = Outputs{}
		err = n.viaWebhook(ctx)
	default:
		// Secrets are not passed to workflows triggered from forks: that
		// must not fail a contributor's pull request.
		err = errors.New(`neither "token" nor "webhook" is set (secrets are empty in pull requests from forks)`)
	}
	if err == nil {
		n.out.Posted = true
		return n.out, nil
	}
	err = fmt.Errorf("notification not sent to Slack: %s", n.redact(err.Error()))
	if in.FailOnError {
		return n.out, err
	}
	in.Log.Warningf("%v", err)
	return n.out, nil
}

// looksLikeID reports whether channel is an ID (C…, G…, D…) rather than a
// #name, so it can be handed on as channel-id.
func looksLikeID(channel string) bool {
	if channel == "" || strings.HasPrefix(channel, "#") {
		return false
	}
	for _, r := range channel {
		if (r < 'A' || r > 'Z') && (r < '0' || r > '9') {
			return false
		}
	}
	return true
}

// notifier is one Run's working state.
type notifier struct {
	in     Inputs
	fields []field
	retry  retrier
	out    Outputs
}

// view renders the run from state plus this step's update.
func (n *notifier) view(st runState, details bool) view {
	in := n.in
	stage := strings.TrimSpace(in.Stage)
	if stage == "" {
		stage = in.Git.Job
	}
	if stage == "" {
		stage = "run"
	}
	u := stageUpdate{
		Stage:  clip(oneLine(stage), maxName),
		Env:    clip(oneLine(in.Environment), maxName),
		Status: normStatus(clip(oneLine(in.Status), maxStatus)),
		Note:   clip(oneLine(in.Text), maxNote),
		Image:  strings.TrimSpace(in.Image),
	}
	i := st.apply(u, in.Now())
	return view{git: in.Git, state: st, current: i, text: in.Text, fields: n.fields, details: details}
}

func (n *notifier) viaWebAPI(ctx context.Context) error {
	in := n.in
	api := newWebAPI(in.Token, in.APIURL, in.HTTPClient, n.retry)
	channel := strings.TrimSpace(in.Channel)

	var st runState
	updating := in.MessageTS != ""
	if updating {
		msg, err := api.read(ctx, channel, in.MessageTS)
		switch {
		case err != nil:
			// Updating still gives the right status and colour; only the
			// earlier stages' rows are lost, so this is no reason to stop.
			in.Log.Warningf("Slack: cannot read message %s to keep its earlier stages, updating it with this stage only: %s", in.MessageTS, n.redact(err.Error()))
		case msg == nil:
			in.Log.Warningf("Slack: no message %s in channel %s: posting a new one", in.MessageTS, channel)
			updating = false
		default:
			st = decodeState(*msg)
		}
	}
	v := n.view(st, !in.Thread)
	n.out.Message = v.render()

	var ts, channelID string
	var err error
	if updating {
		channelID, err = api.update(ctx, channel, in.MessageTS, n.out.Message)
		switch slackCode(err) {
		case "message_not_found", "cant_update_message", "edit_window_closed":
			in.Log.Warningf("Slack: cannot update message %s (%s): posting a new one", in.MessageTS, slackCode(err))
			updating = false
		default:
			if err != nil {
				return err
			}
			ts = in.MessageTS
		}
	}
	if !updating {
		if channelID, ts, err = api.post(ctx, channel, "", n.out.Message); err != nil {
			return err
		}
	}
	n.out.TS, n.out.ChannelID = ts, channelID
	verb := map[bool]string{true: "updated", false: "posted"}[updating]
	in.Log.Infof("Slack: %s message %s in %s: %s", verb, ts, channelID, n.out.Message.Text)

	if in.Thread {
		_, rts, err := api.post(ctx, channelID, ts, v.reply())
		if err != nil {
			return err
		}
		n.out.ThreadTS = ts
		in.Log.Infof("Slack: replied in thread %s (reply %s)", ts, rts)
	}
	return nil
}

func (n *notifier) viaWebhook(ctx context.Context) error {
	in := n.in
	if in.MessageTS != "" {
		in.Log.Infof("Slack: an incoming webhook cannot update message %s: posting a new one (use a bot token to update in place)", in.MessageTS)
	}
	if in.Thread {
		in.Log.Infof("Slack: an incoming webhook cannot reply in a thread: the details go in the message")
	}
	v := n.view(runState{}, true)
	n.out.Message = v.render()
	err := n.retry.do(ctx, "incoming webhook", func(ctx context.Context) error {
		return postWebhook(ctx, in.HTTPClient, in.Webhook, n.out.Message)
	})
	if err == nil {
		in.Log.Infof("Slack: posted through the incoming webhook: %s", n.out.Message.Text)
	}
	return err
}

// redact removes the secrets from text bound for the log: a proxy or a
// server error page may echo a request.
func (n *notifier) redact(s string) string {
	for _, secret := range []string{n.in.Token, n.in.Webhook} {
		if secret = strings.TrimSpace(secret); secret != "" {
			s = strings.ReplaceAll(s, secret, "***")
		}
	}
	if u, err := url.Parse(n.in.Webhook); err == nil && len(u.Path) > 1 {
		s = strings.ReplaceAll(s, u.Path, "/***")
	}
	return s
}
