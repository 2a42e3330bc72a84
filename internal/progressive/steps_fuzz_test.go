package progressive

import (
	"slices"
	"strings"
	"testing"
)

// FuzzParseSteps: any steps input either parses into a schedule that
// moves all traffic (strictly increasing weights from 1 to 100, holds not
// negative) and prints back to itself, or is refused with an error naming
// the input. Never a panic.
func FuzzParseSteps(f *testing.F) {
	for _, s := range []string{DefaultSteps, "100:0s", "10%:30s, 100:1m", "1:1ns,2:1h30m,100:0s", "10:1.5s,100:90s",
		"", ",", "10:5m,", "50:5m,10:5m,100:1m", "10:-1s,100:1s", "101:1m", "10:5q,100:1m", "10,100:1m", "10:,100:1m", "x:1m"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		steps, err := ParseSteps(s)
		if err != nil {
			if !strings.Contains(err.Error(), `input "steps"`) {
				t.Fatalf("ParseSteps(%q): error %q does not name the input", s, err)
			}
			return
		}
		for i, st := range steps {
			if st.Weight < 1 || st.Weight > 100 || st.Hold < 0 || (i > 0 && st.Weight <= steps[i-1].Weight) {
				t.Fatalf("ParseSteps(%q) = %v: step %d breaks the schedule's rules", s, steps, i+1)
			}
		}
		if steps[len(steps)-1].Weight != 100 {
			t.Fatalf("ParseSteps(%q) = %v does not end at 100", s, steps)
		}
		again, err := ParseSteps(steps.String())
		if err != nil || !slices.Equal(again, steps) {
			t.Fatalf("ParseSteps(%q) = %v, printed %q, parsed back %v, %v", s, steps, steps.String(), again, err)
		}
	})
}
