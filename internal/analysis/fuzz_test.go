package analysis

import (
	"math"
	"strings"
	"testing"
	"time"
)

// FuzzThresholds: the share, latency and memory inputs either parse into
// a value in range or are refused naming the input. Never a panic.
func FuzzThresholds(f *testing.F) {
	for _, s := range []string{"95%", "0.95", "off", "OFF", "1000ms", "1s", "1000", "2.5", "90% required", "required",
		"", "%", "-1", "NaN", "Inf", "1e309", "101%", "0x10", "1s required", "required required", "1_000"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if v, err := ParseShare("error-rate", s); err != nil {
			if !strings.Contains(err.Error(), `input "error-rate"`) {
				t.Fatalf("ParseShare(%q): %q does not name the input", s, err)
			}
		} else if v < 0 || v > 1 || math.IsNaN(v) {
			t.Fatalf("ParseShare(%q) = %v, outside [0, 1]", s, v)
		}
		if d, err := ParseLatency("p95", s); err != nil {
			if !strings.Contains(err.Error(), `input "p95"`) {
				t.Fatalf("ParseLatency(%q): %q does not name the input", s, err)
			}
		} else if d < 0 || (d == 0 && !strings.EqualFold(strings.TrimSpace(s), "off")) {
			t.Fatalf("ParseLatency(%q) = %v: a limit must be positive, or off", s, d)
		}
		if v, req, err := ParseMemory("memory", s); err != nil {
			if !strings.Contains(err.Error(), `input "memory"`) {
				t.Fatalf("ParseMemory(%q): %q does not name the input", s, err)
			}
		} else if v < 0 || v > 1 || math.IsNaN(v) || (req && v == 0) {
			t.Fatalf("ParseMemory(%q) = %v, %v", s, v, req)
		}
	})
}

// FuzzMetricOverride: a metric input line either replaces one query or is
// refused naming the input, and the queries stay usable: a histogram
// override keeps the convention's status label.
func FuzzMetricOverride(f *testing.F) {
	for _, s := range []string{"histogram=api_latency_seconds", "total=sum(rate(x[$range]))", "memory=", "=x", "x", "nope=1",
		"errors = sum(increase(x{$selector,code=~\"5..\"}[$range]))", "histogram==", "fast=a=b"} {
		f.Add(s, "prom-client")
	}
	f.Fuzz(func(t *testing.T, line, preset string) {
		q := DefaultQueries()
		if c, err := ConventionFor(preset); err == nil {
			q = QueriesForConvention(c)
		} else if !strings.Contains(err.Error(), `input "preset"`) {
			t.Fatalf("ConventionFor(%q): %q does not name the input", preset, err)
		}
		status := q.Convention.Status
		if err := q.SetOverride(line); err != nil {
			if !strings.Contains(err.Error(), `input "metric"`) {
				t.Fatalf("SetOverride(%q): %q does not name the input", line, err)
			}
			return
		}
		if q.Convention.Status != status {
			t.Fatalf("SetOverride(%q) changed the status label from %q to %q", line, status, q.Convention.Status)
		}
		for _, expr := range []string{q.Total, q.Errors, q.Success, q.Fast, q.Buckets, q.Memory} {
			if expr == "" {
				t.Fatalf("SetOverride(%q) left a query empty: %+v", line, q)
			}
		}
	})
}

// FuzzBucketsFor: any list of le values maps a limit onto the histogram
// (exact, or a bucket below and one above it), or is refused naming the
// buckets. Never a panic.
func FuzzBucketsFor(f *testing.F) {
	f.Add("0.003,0.03,0.1,0.3,1.5,10,+Inf", int64(2000))
	f.Add("1,2,+Inf", int64(1000))
	f.Add("+Inf", int64(1000))
	f.Add("", int64(1))
	f.Add("NaN,-1,abc,1e400", int64(1500))
	f.Fuzz(func(t *testing.T, les string, ms int64) {
		if ms <= 0 || ms > int64(time.Hour/time.Millisecond) {
			return
		}
		d := time.Duration(ms) * time.Millisecond
		var list []string
		if les != "" {
			list = strings.Split(les, ",")
		}
		lb, err := bucketsFor(list, d, 1, `job="api"`)
		if err != nil {
			if !strings.Contains(err.Error(), "le=") {
				t.Fatalf("bucketsFor(%q, %v): %q does not list the buckets", les, d, err)
			}
			return
		}
		if lb.exact {
			return
		}
		if lb.hi == "" || (lb.lo != "" && mustFloat(lb.lo) >= d.Seconds()) || mustFloat(lb.hi) < d.Seconds() {
			t.Fatalf("bucketsFor(%q, %v) = %+v: not a bucket below and one above the limit", les, d, lb)
		}
	})
}
