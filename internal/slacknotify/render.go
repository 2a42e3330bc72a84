package slacknotify

import (
	"fmt"
	"strings"
	"time"

	"github.com/slack-go/slack"
)

// Slack's Block Kit limits (https://api.slack.com/reference/block-kit/blocks),
// in characters.
const (
	maxHeader      = 150  // header block text
	maxSection     = 3000 // section text
	maxField       = 2000 // one section field
	maxFields      = 10   // fields per section
	maxContextText = 3000 // a context element's text
	maxFallback    = 3000 // the message's text (notifications, screen readers)

	// Limits of our own, for a message people can read at a glance.
	maxName        = 60  // stage and environment names
	maxStatus      = 40  // a status word
	maxNote        = 200 // a stage's note
	maxCommitLine  = 150 // the commit message's first line
	maxImage       = 300 // the image reference
	maxFieldsTotal = 20
)

// Message is a rendered Slack message, as chat.postMessage, chat.update and
// incoming webhooks take it: Text is the notification and screen-reader
// fallback, Blocks the content, Attachments the coloured bar with the
// commit, image and links.
type Message struct {
	Text        string             `json:"text"`
	Blocks      []slack.Block      `json:"blocks"`
	Attachments []slack.Attachment `json:"attachments,omitempty"`
}

// field is one key=value line of the fields input.
type field struct{ Key, Value string }

// parseFields reads key=value lines. A line without "=" continues the
// previous value: a value interpolated from a multi-line output (a
// reason, a plan) then stays one field instead of failing the step.
func parseFields(lines []string) ([]field, error) {
	var fs []field
	for i, line := range lines {
		k, v, ok := strings.Cut(line, "=")
		switch {
		case ok && strings.TrimSpace(k) != "":
			fs = append(fs, field{Key: strings.TrimSpace(k), Value: strings.TrimSpace(v)})
		case len(fs) > 0:
			fs[len(fs)-1].Value += "\n" + line
		default:
			return nil, fmt.Errorf(`input "fields": line %d is not key=value: write one field per line, e.g. version=1.2.3`, i+1)
		}
	}
	return fs, nil
}

// view is everything one message is rendered from.
type view struct {
	git     RunContext
	state   runState
	current int // index in state.Stages of the stage this step reports
	text    string
	fields  []field
	// details puts text and fields in the message; in thread mode they go
	// to the reply instead and the message stays a summary.
	details bool
}

// render builds the run's message. Everything a user, a commit author or a
// branch name controls goes through escape, markdownToMrkdwn or code, and
// is cut to Slack's limits.
func (v view) render() Message {
	top := v.state.overall()
	var blocks []slack.Block
	blocks = append(blocks, slack.NewHeaderBlock(
		slack.NewTextBlockObject(slack.PlainTextType, plainText(v.headline(), maxHeader), true, false)))
	blocks = append(blocks, slack.NewSectionBlock(mrkdwn(v.statusLine(top)), nil, nil,
		slack.SectionBlockOptionBlockID(encodeRun(v.state))))
	for i, r := range v.state.Stages {
		// With the details in the message, the current stage's note would
		// repeat the text's first line right below it.
		note := !v.details || i != v.current
		blocks = append(blocks, slack.NewSectionBlock(mrkdwn(stageLine(r, note)), nil, nil,
			slack.SectionBlockOptionBlockID(encodeStage(i, r))))
	}
	if v.details {
		blocks = append(blocks, v.detailBlocks()...)
	}
	return Message{
		Text:   v.fallback(top),
		Blocks: blocks,
		Attachments: []slack.Attachment{{
			Color:    classOf(top.Status).colour(),
			Fallback: v.fallback(top),
			Blocks:   slack.Blocks{BlockSet: v.contextBlocks()},
		}},
	}
}

// reply builds the thread reply that carries this step's details.
func (v view) reply() Message {
	r := v.state.Stages[v.current]
	blocks := []slack.Block{slack.NewSectionBlock(mrkdwn(stageLine(r, false)), nil, nil)}
	blocks = append(blocks, v.detailBlocks()...)
	return Message{
		Text:   escapeClip(fmt.Sprintf("%s: %s", title(r.Status), stageTitle(r)), maxFallback),
		Blocks: blocks,
	}
}

func (v view) headline() string {
	parts := []string{}
	for _, p := range []string{v.git.Repository, v.git.Workflow} {
		if p = oneLine(p); p != "" {
			parts = append(parts, p)
		}
	}
	if len(parts) == 0 {
		return "Gantry pipeline"
	}
	return strings.Join(parts, " · ")
}

func (v view) statusLine(top stageRow) string {
	s := emoji(top.Status) + " *" + esc(heading(top.Status), maxStatus) + "*"
	run := "run"
	if v.git.RunNumber > 0 {
		run = fmt.Sprintf("run #%d", v.git.RunNumber)
		if v.git.RunAttempt > 1 {
			run += fmt.Sprintf(" (attempt %d)", v.git.RunAttempt)
		}
	}
	s += " · " + link(v.git.RunURL, run)
	if v.git.Actor != "" {
		s += " by " + esc(v.git.Actor, maxName)
	}
	return s
}

func stageTitle(r stageRow) string {
	if r.Env != "" {
		return r.Name + " → " + r.Env
	}
	return r.Name
}

// stageLine is one stage's row: mark, name, environment, status, how long
// it took, and (withNote) its note.
func stageLine(r stageRow, withNote bool) string {
	s := emoji(r.Status) + " *" + esc(r.Name, maxName) + "*"
	if r.Env != "" {
		s += " → *" + esc(r.Env, maxName) + "*"
	}
	s += " — " + esc(strings.ReplaceAll(r.Status, "-", " "), maxStatus)
	if r.Start > 0 && r.End > r.Start {
		s += " in " + duration(time.Duration(r.End-r.Start)*time.Second)
	}
	if n := oneLine(r.Note); n != "" && withNote {
		s += "\n" + clipMrkdwn(markdownToMrkdwn(n), maxNote)
	}
	return s
}

// detailBlocks are the step's text and fields.
func (v view) detailBlocks() []slack.Block {
	var blocks []slack.Block
	if t := markdownToMrkdwn(v.text); t != "" {
		blocks = append(blocks, slack.NewSectionBlock(mrkdwn(clipMrkdwn(t, maxSection)), nil, nil))
	}
	fs := v.fields
	if len(fs) > maxFieldsTotal {
		fs = fs[:maxFieldsTotal]
	}
	for len(fs) > 0 {
		n := min(len(fs), maxFields)
		var objs []*slack.TextBlockObject
		for _, f := range fs[:n] {
			objs = append(objs, mrkdwn(renderField(f)))
		}
		blocks = append(blocks, slack.NewSectionBlock(nil, objs, nil))
		fs = fs[n:]
	}
	return blocks
}

func renderField(f field) string {
	key := "*" + esc(oneLine(f.Key), 100) + "*\n"
	if u := linkURL(f.Value); u != "" && !strings.ContainsAny(strings.TrimSpace(f.Value), " \n") {
		return key + "<" + u + "|" + esc(f.Value, 200) + ">"
	}
	return key + escapeClip(f.Value, maxField-len([]rune(key))-1)
}

// contextBlocks are the attachment's: commit, image, links.
func (v view) contextBlocks() []slack.Block {
	g := v.git
	var blocks []slack.Block

	var commit []slack.MixedElement
	if sha := g.CommitSHA(); sha != "" {
		s := link(g.CommitURL(), shortSHA(sha))
		if msg := oneLine(g.CommitMessage); msg != "" {
			s += " " + esc(msg, maxCommitLine)
		}
		commit = append(commit, mrkdwn(s))
	}
	if g.CommitAuthor != "" {
		commit = append(commit, mrkdwn("by *"+esc(g.CommitAuthor, maxName)+"*"))
	}
	if ref := g.refLabel(); ref != "" {
		s := "on " + code(ref, 120)
		if g.IsPR() {
			s = "in " + link(g.PRURL, ref)
			if b := g.Branch(); b != "" {
				s += " " + code(b, 120)
			}
		}
		commit = append(commit, mrkdwn(s))
	}
	if len(commit) > 0 {
		blocks = append(blocks, slack.NewContextBlock("", commit...))
	}

	if v.state.Image != "" {
		blocks = append(blocks, slack.NewSectionBlock(mrkdwn("*Image* "+code(v.state.Image, maxImage)), nil, nil))
	}

	var links []string
	if g.RunURL != "" {
		links = append(links, link(g.RunURL, "Workflow run"))
	}
	if u := g.CommitURL(); u != "" {
		links = append(links, link(u, "Commit "+shortSHA(g.CommitSHA())))
	}
	if g.PRURL != "" {
		links = append(links, link(g.PRURL, fmt.Sprintf("Pull request #%d", g.PRNumber)))
	}
	deployed := false
	for _, r := range v.state.Stages {
		deployed = deployed || r.Env != ""
	}
	if u := g.DeploymentsURL(); u != "" && deployed {
		links = append(links, link(u, "Deployments"))
	}
	if len(links) > 0 {
		blocks = append(blocks, slack.NewContextBlock("", mrkdwn(clipMrkdwn(strings.Join(links, " · "), maxContextText))))
	}
	return blocks
}

// fallback is the message's plain text: what notifications and screen
// readers show. It is mrkdwn too, so it is escaped like the blocks.
func (v view) fallback(top stageRow) string {
	cur := v.state.Stages[v.current]
	s := fmt.Sprintf("%s: %s — %s %s", heading(top.Status), v.headline(), stageTitle(cur), strings.ReplaceAll(cur.Status, "-", " "))
	return escapeClip(s, maxFallback)
}

func mrkdwn(s string) *slack.TextBlockObject {
	return slack.NewTextBlockObject(slack.MarkdownType, s, false, false)
}

// duration formats how long a stage took: 45s, 2m 05s, 1h 02m.
func duration(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm %02ds", int(d.Minutes()), int(d.Seconds())%60)
	}
	return fmt.Sprintf("%dh %02dm", int(d.Hours()), int(d.Minutes())%60)
}
