package slacknotify

import (
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/slack-go/slack"
)

// The state of a run — which stages ran, how each ended, the image — lives
// in the Slack message itself, in the block_id of the block that shows it:
//
//	gantry:v1:stage:e=staging&i=2&n=deploy&s=rolled-back&t0=1795643700&t1=1795643950
//	gantry:v1:run:img=ghcr.io%2Facme%2Fapp%40sha256%3A…
//
// A later job, knowing only message-ts and channel-id, reads the message
// back (conversations.history, latest=ts, inclusive, limit 1), decodes the
// stages from these ids, adds its own and re-renders the whole message.
//
// Why block_ids and not the alternatives:
//   - Job outputs or artifacts would need every job to pass the state on;
//     a failed or skipped job would break the chain. The message is the one
//     thing every job can reach.
//   - Parsing the visible text would tie the state to wording and break on
//     the first layout change or truncation.
//   - Message metadata (event_payload) would be a second copy of the state
//     beside the blocks, returned only when asked for (include_all_metadata).
//     A block_id travels with the block it describes, so what the message
//     shows and what the next job reads cannot disagree; readers never see
//     it, and Slack returns it as given with every read of the blocks.
//
// Each id holds one stage, so the 255-character limit of a block_id bounds a
// stage, not the run (a long note is cut first). A block_id must be unique
// within a message: the stage's index is part of it. Ids with another
// version prefix are ignored, so a future format starts a fresh history
// rather than misreading an old one.
//
// Reading needs the channels:history scope (groups:history for private
// channels). Two jobs updating the same message at the same moment can
// still lose one's row: Slack has no compare-and-swap, so the later update
// wins. Pipelines whose parallel jobs notify should let a final job
// (needs: [...], if: always()) report them.
const (
	stagePrefix = "gantry:v1:stage:"
	runPrefix   = "gantry:v1:run:"
	maxBlockID  = 255
	// maxStages keeps the message under Slack's 50 blocks with room for the
	// header, status, text and fields. The oldest stages go first.
	maxStages = 30
)

// stageRow is one stage of the run as the message shows it.
type stageRow struct {
	Name   string
	Env    string
	Status string // normalised (normStatus)
	Note   string // the first line of the stage's text, as Markdown
	Start  int64  // Unix seconds when the stage was first reported running; 0 if never
	End    int64  // Unix seconds when the stage reported being done
}

// runState is everything a message carries from one job to the next.
type runState struct {
	Stages []stageRow
	Image  string
}

// encodeStage returns the block_id that carries row (at index i).
func encodeStage(i int, row stageRow) string {
	note := []rune(row.Note)
	for {
		v := url.Values{"i": {strconv.Itoa(i)}, "n": {row.Name}, "s": {row.Status}}
		if row.Env != "" {
			v.Set("e", row.Env)
		}
		if len(note) > 0 {
			v.Set("note", string(note))
		}
		if row.Start > 0 {
			v.Set("t0", strconv.FormatInt(row.Start, 10))
		}
		if row.End > 0 {
			v.Set("t1", strconv.FormatInt(row.End, 10))
		}
		id := stagePrefix + v.Encode()
		if len(id) <= maxBlockID {
			return id
		}
		if len(note) == 0 {
			// Name and environment are clipped on input, so only a
			// pathological mix of both can get here: keep the row, lose
			// the detail.
			return stagePrefix + url.Values{"i": {strconv.Itoa(i)}, "n": {clip(row.Name, 20)}, "s": {clip(row.Status, 20)}}.Encode()
		}
		note = note[:len(note)*3/4]
	}
}

// encodeRun returns the block_id that carries the run-wide state.
func encodeRun(st runState) string {
	v := url.Values{}
	if st.Image != "" {
		v.Set("img", st.Image)
	}
	if id := runPrefix + v.Encode(); len(id) <= maxBlockID {
		return id
	}
	return runPrefix
}

// decodeState reads the state back from a message's blocks (and, to be
// lenient about where a block ends up, its attachments' blocks).
func decodeState(m slack.Message) runState {
	var st runState
	type indexed struct {
		i   int
		row stageRow
	}
	var rows []indexed
	blocks := append([]slack.Block{}, m.Blocks.BlockSet...)
	for _, a := range m.Attachments {
		blocks = append(blocks, a.Blocks.BlockSet...)
	}
	for _, b := range blocks {
		if b == nil {
			continue
		}
		id := b.ID()
		switch {
		case strings.HasPrefix(id, stagePrefix):
			v, err := url.ParseQuery(strings.TrimPrefix(id, stagePrefix))
			if err != nil || v.Get("n") == "" {
				continue
			}
			i, _ := strconv.Atoi(v.Get("i"))
			t0, _ := strconv.ParseInt(v.Get("t0"), 10, 64)
			t1, _ := strconv.ParseInt(v.Get("t1"), 10, 64)
			rows = append(rows, indexed{i, stageRow{
				Name:   clip(v.Get("n"), maxName),
				Env:    clip(v.Get("e"), maxName),
				Status: normStatus(clip(v.Get("s"), maxStatus)),
				Note:   v.Get("note"),
				Start:  t0,
				End:    t1,
			}})
		case strings.HasPrefix(id, runPrefix):
			if v, err := url.ParseQuery(strings.TrimPrefix(id, runPrefix)); err == nil {
				st.Image = v.Get("img")
			}
		}
	}
	sort.SliceStable(rows, func(a, b int) bool { return rows[a].i < rows[b].i })
	for _, r := range rows {
		st.Stages = append(st.Stages, r.row)
	}
	return st
}

// stageUpdate is what one gantry-notify step reports.
type stageUpdate struct {
	Stage  string
	Env    string
	Status string
	Note   string
	Image  string
}

// apply records u in the state and returns the index of its stage. A stage
// is the same stage when name and environment match (deploy to staging and
// deploy to production are two rows); it keeps its place and the time it
// started, so the row can say how long it took.
func (st *runState) apply(u stageUpdate, now time.Time) int {
	if u.Image != "" {
		st.Image = u.Image
	}
	idx := -1
	for i, r := range st.Stages {
		if strings.EqualFold(r.Name, u.Stage) && strings.EqualFold(r.Env, u.Env) {
			idx = i
		}
	}
	if idx < 0 {
		st.Stages = append(st.Stages, stageRow{Name: u.Stage, Env: u.Env})
		idx = len(st.Stages) - 1
	}
	r := &st.Stages[idx]
	r.Status = u.Status
	if u.Note != "" {
		r.Note = u.Note
	}
	if classOf(u.Status).done() {
		if r.Start > 0 {
			r.End = now.Unix()
		}
	} else {
		if r.Start == 0 || r.End > 0 {
			// A stage that runs again (a re-run job) starts a new clock.
			r.Start = now.Unix()
		}
		r.End = 0
	}
	if over := len(st.Stages) - maxStages; over > 0 {
		st.Stages = st.Stages[over:]
		idx -= over
	}
	return idx
}

// overall is the stage whose status colours the message: the most severe,
// and among equals the latest.
func (st runState) overall() stageRow {
	var best stageRow
	bestClass := class(-1)
	for _, r := range st.Stages {
		if c := classOf(r.Status); c >= bestClass {
			best, bestClass = r, c
		}
	}
	return best
}
