// Package notifytest runs a Slack workspace for tests and the demo: slack-go's
// slacktest server, with handlers for what gantry-notify needs and
// slacktest leaves out. slacktest answers chat.postMessage without keeping
// the message (and with second-resolution, so colliding, ts values) and has
// no chat.update or conversations.history; the handlers registered here
// keep every message, so a test can post, update in place, read back and
// reply in threads, and can queue failures (429 with Retry-After, 5xx,
// Slack error codes) in front of any method.
package notifytest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"

	"github.com/slack-go/slack/slacktest"
)

// Token is the bot token the workspace accepts.
const Token = "xoxb-1111-2222-gantrytesttoken"

// Message is a message as the workspace stores it: blocks and attachments
// exactly as the client sent them.
type Message struct {
	Channel     string          `json:"channel"`
	TS          string          `json:"ts"`
	ThreadTS    string          `json:"thread_ts,omitempty"`
	Text        string          `json:"text"`
	Blocks      json.RawMessage `json:"blocks,omitempty"`
	Attachments json.RawMessage `json:"attachments,omitempty"`
	Edits       int             `json:"-"`
}

// Call is one request the workspace answered.
type Call struct {
	Method string
	Form   url.Values
	Auth   string // the Authorization header
}

// Fault is an answer queued in front of a method: an HTTP status (with a
// Retry-After header when RetryAfter is set) or, with Status 0, an
// ok:false answer carrying SlackError.
type Fault struct {
	Status     int
	RetryAfter string
	SlackError string
	Needed     string // for missing_scope
}

// Workspace is a running slacktest server with gantry-notify's handlers.
// It has two channels, #deploys (C0DEPLOYS) and #releases (C0RELEASES);
// any other channel is channel_not_found.
type Workspace struct {
	srv *slacktest.Server

	mu       sync.Mutex
	seq      int
	messages []*Message
	calls    []Call
	faults   map[string][]Fault
}

// Start starts a workspace; Close stops it.
func Start() *Workspace {
	ws := &Workspace{faults: map[string][]Fault{}}
	ws.srv = slacktest.NewTestServer(func(c slacktest.Customize) {
		c.Handle("/chat.postMessage", ws.handler("chat.postMessage", ws.post))
		c.Handle("/chat.update", ws.handler("chat.update", ws.update))
		c.Handle("/conversations.history", ws.handler("conversations.history", ws.history))
	})
	ws.srv.Start()
	return ws
}

// Close stops the server.
func (ws *Workspace) Close() { ws.srv.Stop() }

// APIURL is the Web API base URL to give gantry-notify (api-url).
func (ws *Workspace) APIURL() string { return ws.srv.GetAPIURL() }

// Fail queues faults for method; each answers one request, in order.
func (ws *Workspace) Fail(method string, faults ...Fault) {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	ws.faults[method] = append(ws.faults[method], faults...)
}

// Messages returns every message and reply, in the order they were posted.
func (ws *Workspace) Messages() []Message {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	var out []Message
	for _, m := range ws.messages {
		out = append(out, *m)
	}
	return out
}

// Message returns the message at ts in channel.
func (ws *Workspace) Message(channel, ts string) (Message, bool) {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	if m := ws.find(channel, ts); m != nil {
		return *m, true
	}
	return Message{}, false
}

// Calls returns every request answered so far, faults included.
func (ws *Workspace) Calls() []Call {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	return slices.Clone(ws.calls)
}

func (ws *Workspace) find(channel, ts string) *Message {
	for _, m := range ws.messages {
		if m.Channel == channel && m.TS == ts {
			return m
		}
	}
	return nil
}

type answer map[string]any

// handler authenticates, records the call, plays queued faults, then runs
// the method.
func (ws *Workspace) handler(method string, h func(url.Values) answer) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		ws.mu.Lock()
		defer ws.mu.Unlock()
		ws.calls = append(ws.calls, Call{Method: method, Form: r.PostForm, Auth: r.Header.Get("Authorization")})
		w.Header().Set("Content-Type", "application/json")
		if q := ws.faults[method]; len(q) > 0 {
			f := q[0]
			ws.faults[method] = q[1:]
			if f.Status != 0 {
				if f.RetryAfter != "" {
					w.Header().Set("Retry-After", f.RetryAfter)
				}
				w.WriteHeader(f.Status)
				fmt.Fprintf(w, "<html><body>%d</body></html>", f.Status)
				return
			}
			a := answer{"ok": false, "error": f.SlackError}
			if f.Needed != "" {
				a["needed"], a["provided"] = f.Needed, "chat:write"
			}
			json.NewEncoder(w).Encode(a)
			return
		}
		token := r.PostForm.Get("token")
		if token == "" {
			token = strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
		}
		if token != Token {
			json.NewEncoder(w).Encode(answer{"ok": false, "error": "invalid_auth"})
			return
		}
		json.NewEncoder(w).Encode(h(r.PostForm))
	}
}

// channelID resolves a channel as Slack does: IDs as they are, known
// #names to their IDs.
func channelID(ch string) (string, bool) {
	switch ch {
	case "#deploys", "C0DEPLOYS":
		return "C0DEPLOYS", true
	case "#releases", "C0RELEASES":
		return "C0RELEASES", true
	}
	return "", false
}

func (ws *Workspace) post(form url.Values) answer {
	ch, ok := channelID(form.Get("channel"))
	if !ok {
		return answer{"ok": false, "error": "channel_not_found"}
	}
	if tts := form.Get("thread_ts"); tts != "" && ws.find(ch, tts) == nil {
		return answer{"ok": false, "error": "thread_not_found"}
	}
	ws.seq++
	m := &Message{
		Channel:  ch,
		TS:       fmt.Sprintf("1795600000.%06d", ws.seq),
		ThreadTS: form.Get("thread_ts"),
		Text:     form.Get("text"),
	}
	setContent(m, form)
	ws.messages = append(ws.messages, m)
	return answer{"ok": true, "channel": ch, "ts": m.TS, "message": m}
}

func (ws *Workspace) update(form url.Values) answer {
	ch, ok := channelID(form.Get("channel"))
	if !ok {
		return answer{"ok": false, "error": "channel_not_found"}
	}
	m := ws.find(ch, form.Get("ts"))
	if m == nil {
		return answer{"ok": false, "error": "message_not_found"}
	}
	m.Text = form.Get("text")
	m.Blocks, m.Attachments = nil, nil
	setContent(m, form)
	m.Edits++
	return answer{"ok": true, "channel": ch, "ts": m.TS, "text": m.Text}
}

// setContent stores blocks and attachments as sent (they arrive as JSON
// strings in the form).
func setContent(m *Message, form url.Values) {
	if b := form.Get("blocks"); b != "" {
		m.Blocks = json.RawMessage(b)
	}
	if a := form.Get("attachments"); a != "" {
		m.Attachments = json.RawMessage(a)
	}
}

// history answers conversations.history for one message, the way
// gantry-notify asks (latest=ts, inclusive, limit 1).
func (ws *Workspace) history(form url.Values) answer {
	ch, ok := channelID(form.Get("channel"))
	if !ok {
		return answer{"ok": false, "error": "channel_not_found"}
	}
	msgs := []any{}
	if m := ws.find(ch, form.Get("latest")); m != nil && m.ThreadTS == "" && form.Get("inclusive") == "1" {
		msg := map[string]any{"type": "message", "ts": m.TS, "text": m.Text}
		if m.Blocks != nil {
			msg["blocks"] = m.Blocks
		}
		if m.Attachments != nil {
			msg["attachments"] = m.Attachments
		}
		msgs = append(msgs, msg)
	}
	return answer{"ok": true, "messages": msgs, "has_more": false}
}
