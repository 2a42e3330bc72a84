package progressive

import (
	"strings"
	"testing"
	"time"
)

func TestParseSteps(t *testing.T) {
	t.Parallel()
	good := []struct {
		in   string
		want Steps
		out  string // String(); "" means in
	}{
		{DefaultSteps, Steps{{10, 5 * time.Minute}, {50, 5 * time.Minute}, {80, 5 * time.Minute}, {100, 5 * time.Minute}}, ""},
		{"100:0s", Steps{{100, 0}}, "100:0s"},
		{" 25% : 30s , 100%:1h30m ", Steps{{25, 30 * time.Second}, {100, 90 * time.Minute}}, "25:30s,100:1h30m"},
		{"1:1s,2:2s,100:500ms", Steps{{1, time.Second}, {2, 2 * time.Second}, {100, 500 * time.Millisecond}}, ""},
		{"10:2h,100:1m30s", Steps{{10, 2 * time.Hour}, {100, 90 * time.Second}}, ""},
	}
	for _, tc := range good {
		got, err := ParseSteps(tc.in)
		if err != nil {
			t.Errorf("ParseSteps(%q): %v", tc.in, err)
			continue
		}
		if len(got) != len(tc.want) {
			t.Errorf("ParseSteps(%q) = %v, want %v", tc.in, got, tc.want)
			continue
		}
		for i := range got {
			if got[i] != tc.want[i] {
				t.Errorf("ParseSteps(%q)[%d] = %+v, want %+v", tc.in, i, got[i], tc.want[i])
			}
		}
		want := tc.out
		if want == "" {
			want = tc.in
		}
		if got.String() != want {
			t.Errorf("ParseSteps(%q).String() = %q, want %q", tc.in, got.String(), want)
		}
		if again, err := ParseSteps(got.String()); err != nil || again.String() != got.String() {
			t.Errorf("ParseSteps(%q) does not read back: %v, %v", got.String(), again, err)
		}
	}

	// Every error names the input and says what to write instead.
	bad := []struct{ in, want string }{
		{"", `input "steps" is empty`},
		{"   ", `input "steps" is empty`},
		{"10:5m,,100:5m", `step 2 is empty`},
		{"10:5m,100:5m,", `step 3 is empty`},
		{"10", `step 1 "10" has no hold: write weight:hold, e.g. 10:5m`},
		{"10:5m,50", `step 2 "50" has no hold`},
		{"ten:5m,100:5m", `weight "ten" is not a whole number`},
		{"10.5:5m,100:5m", `weight "10.5" is not a whole number`},
		{"0:5m,100:5m", `weight 0 is out of range`},
		{"-10:5m,100:5m", `weight -10 is out of range`},
		{"10:5m,150:5m", `step 2 "150:5m": weight 150 is out of range`},
		{"10:,100:5m", `step 1 "10:" has an empty hold`},
		{"10:5,100:5m", `hold "5" is not a duration`},
		{"10:5 min,100:5m", `hold "5 min" is not a duration`},
		{"10:-5m,100:5m", `hold -5m is negative`},
		{"50:5m,10:5m,100:5m", `step 2 "10:5m": weight 10 does not increase on step 1's 50`},
		{"10:5m,10:5m,100:5m", `weight 10 does not increase`},
		{"10:5m,50:5m,80:5m", `the last step sends 80% to the canary, it must end at 100`},
		{"10:5m:1m,100:5m", `hold "5m:1m" is not a duration`},
	}
	for _, tc := range bad {
		_, err := ParseSteps(tc.in)
		if err == nil {
			t.Errorf("ParseSteps(%q) succeeded, want an error containing %q", tc.in, tc.want)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), `input "steps"`) {
			t.Errorf("ParseSteps(%q) = %q, want it to start with input \"steps\" and contain %q", tc.in, err, tc.want)
		}
	}
}
