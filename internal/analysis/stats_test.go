package analysis

import (
	"math"
	"testing"
)

func TestZ(t *testing.T) {
	for _, tc := range []struct{ c, want float64 }{{0.5, 0}, {0.95, 1.6449}, {0.99, 2.3263}, {0.999, 3.0902}} {
		if got := Z(tc.c); math.Abs(got-tc.want) > 1e-3 {
			t.Errorf("Z(%v) = %v, want %v", tc.c, got, tc.want)
		}
	}
}

func TestWilson(t *testing.T) {
	z := Z(0.975) // two-sided 95%, the textbook tables
	for _, tc := range []struct {
		name         string
		bad, total   int64
		lower, upper float64
	}{
		// Reference values: Newcombe (1998), table I, and R's prop.test(correct=FALSE).
		{"81 of 263", 81, 263, 0.2553, 0.3662},
		{"15 of 148", 15, 148, 0.0624, 0.1605},
		{"0 of 20", 0, 20, 0, 0.1611},
		{"1 of 29", 1, 29, 0.0061, 0.1718},
		{"all 10 of 10", 10, 10, 0.7225, 1},
		{"no requests", 0, 0, 0, 1},
	} {
		lo, hi := Wilson(tc.bad, tc.total, z)
		if math.Abs(lo-tc.lower) > 5e-4 || math.Abs(hi-tc.upper) > 5e-4 {
			t.Errorf("%s: Wilson = [%.4f, %.4f], want [%.4f, %.4f]", tc.name, lo, hi, tc.lower, tc.upper)
		}
		if lo < 0 || hi > 1 || lo > hi {
			t.Errorf("%s: interval [%v, %v] outside [0,1] or inverted", tc.name, lo, hi)
		}
	}
}

func TestDiffInterval(t *testing.T) {
	z := Z(0.975)
	// Newcombe (1998) table II, example (a): 56/70 - 48/80 → [0.0524, 0.3339].
	lo, hi := DiffInterval(56, 70, 48, 80, z)
	if math.Abs(lo-0.0524) > 5e-4 || math.Abs(hi-0.3339) > 5e-4 {
		t.Errorf("DiffInterval(56/70, 48/80) = [%.4f, %.4f], want [0.0524, 0.3339]", lo, hi)
	}
	// Example (h): 0/10 - 0/20 → [-0.1611, 0.2775].
	lo, hi = DiffInterval(0, 10, 0, 20, z)
	if math.Abs(lo+0.1611) > 5e-4 || math.Abs(hi-0.2775) > 5e-4 {
		t.Errorf("DiffInterval(0/10, 0/20) = [%.4f, %.4f], want [-0.1611, 0.2775]", lo, hi)
	}
}

func TestJudgeMax(t *testing.T) {
	for _, tc := range []struct {
		lo, hi, limit float64
		want          Judgement
	}{
		{0.06, 0.10, 0.05, Beyond},
		{0.01, 0.05, 0.05, Within},
		{0.04, 0.06, 0.05, Unsure},
		{0, 1, 0.05, Unsure},
	} {
		if got := JudgeMax(tc.lo, tc.hi, tc.limit); got != tc.want {
			t.Errorf("JudgeMax(%v, %v, %v) = %v, want %v", tc.lo, tc.hi, tc.limit, got, tc.want)
		}
	}
}
