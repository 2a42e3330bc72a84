package vulnscan

import (
	"fmt"
	"slices"
	"testing"
)

// TestLogTailGitLines: a scan's error carries the git lines gitleaks
// logged during that scan, not those of an earlier one.
func TestLogTailGitLines(t *testing.T) {
	l := &logTail{}
	fmt.Fprint(l, `{"level":"error","message":"[git] fatal: an earlier scan's error"}`)
	mark := l.mark()
	if got := l.gitLines(mark); len(got) != 0 {
		t.Errorf("nothing logged since the mark, got %q", got)
	}
	fmt.Fprint(l, `{"level":"warn","message":"inexact rename detection was skipped"}`)
	fmt.Fprint(l, `{"level":"error","message":"[git] fatal: bad revision 'x..HEAD'"}`)
	if got := l.gitLines(mark); !slices.Equal(got, []string{"fatal: bad revision 'x..HEAD'"}) {
		t.Errorf("gitLines since the mark = %q", got)
	}
	for i := range 30 {
		fmt.Fprintf(l, `{"level":"error","message":"[git] line %d"}`, i)
	}
	if got := l.gitLines(mark); len(got) != 20 || got[19] != "line 29" {
		t.Errorf("after 30 more lines: %d kept, last %q; want the last 20", len(got), got[len(got)-1])
	}
}
