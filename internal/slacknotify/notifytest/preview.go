package notifytest

import (
	"encoding/json"
	"strings"
)

// block is the part of a Block Kit block a preview shows.
type block struct {
	Type     string `json:"type"`
	Text     *text  `json:"text"`
	Fields   []text `json:"fields"`
	Elements []text `json:"elements"`
}

type text struct {
	Text string `json:"text"`
}

// Preview renders a stored message as plain lines, roughly as Slack lays
// it out: the header, each section and context on its own lines, and the
// attachment behind a bar named by its colour. Mrkdwn is shown as sent
// (escaped entities and <url|label> links included), which is what a
// reviewer needs to see.
func Preview(m Message) string {
	var b strings.Builder
	writeBlocks(&b, "", m.Blocks)
	var atts []struct {
		Color  string          `json:"color"`
		Blocks json.RawMessage `json:"blocks"`
	}
	json.Unmarshal(m.Attachments, &atts)
	for _, a := range atts {
		b.WriteString("┃ colour " + a.Color + "\n")
		writeBlocks(&b, "┃ ", a.Blocks)
	}
	return b.String()
}

func writeBlocks(b *strings.Builder, prefix string, raw json.RawMessage) {
	var blocks []block
	json.Unmarshal(raw, &blocks)
	line := func(s string) {
		for _, l := range strings.Split(s, "\n") {
			b.WriteString(prefix + l + "\n")
		}
	}
	for _, bl := range blocks {
		switch bl.Type {
		case "header":
			line("# " + bl.Text.Text)
		case "section":
			if bl.Text != nil {
				line(bl.Text.Text)
			}
			for _, f := range bl.Fields {
				line("  " + strings.ReplaceAll(f.Text, "\n", ": "))
			}
		case "context":
			var parts []string
			for _, e := range bl.Elements {
				parts = append(parts, e.Text)
			}
			line(strings.Join(parts, "  "))
		case "divider":
			line("────────")
		}
	}
}
