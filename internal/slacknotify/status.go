package slacknotify

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// class groups the statuses stages report into what a reader needs from
// the colour: done, broken, needs a look, still going, or stopped.
type class int

// Classes in increasing severity: the message takes the colour of its most
// severe stage, so one failure stays red while later stages go on, and a
// running stage keeps the run blue until it reports.
const (
	classNeutral   class = iota // skipped, unknown
	classSuccess                // success, pass, promoted
	classRunning                // started, running
	classCancelled              // cancelled
	classWarning                // rolled-back, inconclusive
	classFailure                // failure, fail, error
)

// statusClasses maps the statuses gantry stages and GitHub (job.status)
// report. Anything else is shown as written, in grey.
var statusClasses = map[string]class{
	"success": classSuccess, "succeeded": classSuccess, "successful": classSuccess,
	"pass": classSuccess, "passed": classSuccess, "promoted": classSuccess,
	"deployed": classSuccess, "completed": classSuccess, "done": classSuccess, "ok": classSuccess,
	"planned": classSuccess, "released": classSuccess,

	"failure": classFailure, "failed": classFailure, "fail": classFailure, "error": classFailure,

	"rolled-back": classWarning, "rollback": classWarning, "inconclusive": classWarning,
	"no-data": classWarning, "warning": classWarning, "unstable": classWarning,

	"started": classRunning, "start": classRunning, "running": classRunning,
	"in-progress": classRunning, "pending": classRunning, "queued": classRunning,
	"waiting": classRunning, "deploying": classRunning,

	"cancelled": classCancelled,

	"skipped": classNeutral,
}

// normStatus spells a status the one way it is stored: lower case, words
// joined by hyphens (In progress → in-progress), American "canceled" as
// GitHub's "cancelled".
func normStatus(s string) string {
	s = strings.Join(strings.FieldsFunc(strings.ToLower(strings.TrimSpace(s)), func(r rune) bool {
		return r == ' ' || r == '_' || r == '-' || r == '\t'
	}), "-")
	switch s {
	case "canceled":
		return "cancelled"
	case "rolledback", "rolled-back":
		return "rolled-back"
	case "":
		return "unknown"
	}
	return s
}

func classOf(status string) class { return statusClasses[normStatus(status)] }

// colour is the attachment bar's colour (Slack's own palette).
func (c class) colour() string {
	switch c {
	case classSuccess:
		return "#2EB67D"
	case classFailure:
		return "#E01E5A"
	case classWarning:
		return "#ECB22E"
	case classRunning:
		return "#36C5F0"
	}
	return "#9E9EA6"
}

// emoji is the status's mark in front of a stage.
func emoji(status string) string {
	switch s := normStatus(status); {
	case s == "rolled-back" || s == "rollback":
		return ":leftwards_arrow_with_hook:"
	case s == "skipped":
		return ":fast_forward:"
	default:
		switch classOf(s) {
		case classSuccess:
			return ":white_check_mark:"
		case classFailure:
			return ":x:"
		case classWarning:
			return ":warning:"
		case classRunning:
			return ":hourglass_flowing_sand:"
		case classCancelled:
			return ":no_entry_sign:"
		}
	}
	return ":grey_question:"
}

// done reports whether a stage in this status has finished.
func (c class) done() bool { return c != classRunning }

// title is a status as a heading word: "rolled-back" → "Rolled back".
func title(status string) string {
	s := strings.ReplaceAll(normStatus(status), "-", " ")
	r, size := utf8.DecodeRuneInString(s)
	return string(unicode.ToUpper(r)) + s[size:]
}

// heading is the run's state in the message's status line.
func heading(status string) string {
	switch classOf(status) {
	case classSuccess:
		return "Succeeded"
	case classFailure:
		return "Failed"
	case classRunning:
		return "In progress"
	case classCancelled:
		return "Cancelled"
	}
	return title(status)
}
