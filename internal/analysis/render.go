package analysis

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
)

// ReadLog parses a decision log (JSON Lines).
func ReadLog(r io.Reader) ([]LogLine, error) {
	var lines []LogLine
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 4*1024*1024)
	for n := 1; sc.Scan(); n++ {
		if strings.TrimSpace(sc.Text()) == "" {
			continue
		}
		var l LogLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			return nil, fmt.Errorf("decision log line %d: %w", n, err)
		}
		lines = append(lines, l)
	}
	return lines, sc.Err()
}

// Render turns a decision log into the job summary: one table row per
// evaluation with each check's counts, estimate and bounds against its
// limit, and a mermaid chart of the estimates over time.
func Render(lines []LogLine, verdict State, reason string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "### gantry-analyze: %s %s\n\n", icon(verdict), strings.ToUpper(string(verdict)))
	fmt.Fprintf(&b, "%s\n\n", escapeCell(reason))
	var kept []LogLine
	for _, l := range lines {
		if l.Metric == "convention" {
			fmt.Fprintf(&b, "Metrics: %s\n\n", escapeCell(l.Reason))
			continue
		}
		kept = append(kept, l)
	}
	lines = kept

	// Columns: every metric that appears, in a stable order.
	order := map[string]int{"error-rate": 0, "success-rate": 1, "p95": 2, "p99": 3, "memory": 4}
	var metrics []string
	seen := map[string]bool{}
	type key struct {
		step    string
		elapsed float64
	}
	rows := map[key]map[string]LogLine{}
	var keys []key
	for _, l := range lines {
		k := key{l.Step, l.ElapsedS}
		if rows[k] == nil {
			rows[k] = map[string]LogLine{}
			keys = append(keys, k)
		}
		rows[k][l.Metric] = l
		if l.Metric != "overall" && !seen[l.Metric] {
			seen[l.Metric] = true
			metrics = append(metrics, l.Metric)
		}
	}
	sort.SliceStable(metrics, func(i, j int) bool { return order[metrics[i]] < order[metrics[j]] })
	if len(keys) == 0 {
		b.WriteString("No evaluation was made.\n")
		return b.String()
	}

	b.WriteString("| step | elapsed |")
	for _, m := range metrics {
		fmt.Fprintf(&b, " %s |", m)
	}
	b.WriteString(" verdict |\n|---|---|")
	for range metrics {
		b.WriteString("---|")
	}
	b.WriteString("---|\n")
	for _, k := range keys {
		row := rows[k]
		fmt.Fprintf(&b, "| %s | %ss |", escapeCell(k.step), trimFloat(k.elapsed))
		for _, m := range metrics {
			fmt.Fprintf(&b, " %s |", cell(row[m]))
		}
		o := row["overall"]
		fmt.Fprintf(&b, " %s %s |\n", icon(o.Verdict), o.Verdict)
	}
	b.WriteString("\nEach cell: bad/total = estimate [lower, upper] vs limit, at the configured confidence; for a latency limit between buckets, surely–possibly slower/total.\n")

	// A chart of every proportion's estimate (percent) per evaluation, with
	// the limits as flat lines, so a reviewer sees how close it came.
	chartMetrics := metrics
	if len(keys) >= 2 && len(chartMetrics) > 0 {
		b.WriteString("\n```mermaid\nxychart-beta\n  title \"Estimate per check (% of requests; memory % of limit)\"\n  x-axis \"elapsed (s)\" [")
		for i, k := range keys {
			if i > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "\"%s\"", trimFloat(k.elapsed))
		}
		b.WriteString("]\n  y-axis \"%\"\n")
		for _, m := range chartMetrics {
			b.WriteString("  line [")
			for i, k := range keys {
				if i > 0 {
					b.WriteString(", ")
				}
				v := 0.0
				if l, ok := rows[k][m]; ok && l.Estimate != nil {
					v = *l.Estimate
				}
				b.WriteString(trimFloat(100 * v))
			}
			b.WriteString("]\n")
		}
		b.WriteString("```\n\nLines, in order: " + strings.Join(chartMetrics, ", ") + ".\n")
	}
	return b.String()
}

func cell(l LogLine) string {
	if l.Metric == "" {
		return "–"
	}
	var s string
	switch {
	case l.Verdict == NotMeasured:
		s = "not measured"
	case l.Estimate == nil:
		s = "no data"
	case l.Bad == nil:
		s = fmt.Sprintf("%.1f%% vs %.0f%%", 100**l.Estimate, 100*deref(l.Threshold))
	case l.BadMaybe != nil:
		// A latency limit between buckets: surely–possibly beyond it.
		s = fmt.Sprintf("%d–%d/%d ≤ %.2f%% [%.2f, %.2f] vs %.0f%%", *l.Bad, *l.BadMaybe, *l.Total, 100**l.Estimate, 100**l.Lower, 100**l.Upper, 100*deref(l.Threshold))
	default:
		s = fmt.Sprintf("%d/%d = %.2f%% [%.2f, %.2f] vs %.0f%%", *l.Bad, *l.Total, 100**l.Estimate, 100**l.Lower, 100**l.Upper, 100*deref(l.Threshold))
	}
	return icon(l.Verdict) + " " + s
}

func deref(f *float64) float64 {
	if f == nil {
		return 0
	}
	return *f
}

func icon(s State) string {
	switch s {
	case Pass:
		return "✅"
	case Fail:
		return "❌"
	case Inconclusive:
		return "⏳"
	case NoData:
		return "∅"
	case Error:
		return "⚠️"
	case NotMeasured:
		return "➖"
	}
	return ""
}

func trimFloat(f float64) string {
	s := fmt.Sprintf("%.2f", f)
	s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	if s == "" || s == "-" {
		return "0"
	}
	return s
}

// escapeCell keeps user-influenced text (reasons quote selectors) from
// breaking the Markdown table.
func escapeCell(s string) string {
	return strings.NewReplacer("|", `\|`, "\n", " ").Replace(s)
}
