package main

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net"
	"strconv"
	"strings"
	"time"
)

// config is everything the service reads from its environment. It is a plain
// struct so tests can build one directly instead of going through env vars.
type config struct {
	ListenAddr string
	Version    string
	Hostname   string
	Healthy    bool

	// Fault injection, applied to /api/* only so probes and scrapes keep
	// working while the canary misbehaves.
	ErrorRate    float64
	ExtraLatency time.Duration
	LatencyRate  float64

	// Buckets are the upper bounds of http_request_duration_seconds, in
	// seconds, strictly increasing. nil means durationBuckets.
	Buckets []float64

	// Rand decides which requests get a fault. Tests pass a seeded source so
	// fractional rates give the same outcome on every run; nil means the
	// runtime's auto-seeded generator.
	Rand *rand.Rand
}

const (
	defaultListenAddr = ":8080"
	defaultVersion    = "dev"
)

// loadConfig takes getenv rather than reading the process environment so tests
// can describe an environment as a map without touching global state.
// Every problem is reported at once, so a broken deployment needs one fix
// round instead of one per variable.
func loadConfig(getenv func(string) string) (config, error) {
	cfg := config{
		ListenAddr:  defaultListenAddr,
		Version:     defaultVersion,
		Healthy:     true,
		LatencyRate: 1,
	}
	var errs []error

	if v := getenv("LISTEN_ADDR"); v != "" {
		if _, _, err := net.SplitHostPort(v); err != nil {
			errs = append(errs, fmt.Errorf("LISTEN_ADDR=%q is not a host:port address (%v); use e.g. LISTEN_ADDR=:8080 or LISTEN_ADDR=127.0.0.1:8080", v, err))
		} else {
			cfg.ListenAddr = v
		}
	}

	if v := getenv("APP_VERSION"); v != "" {
		cfg.Version = v
	}

	if v := getenv("HEALTHY"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("HEALTHY=%q is not a boolean; set HEALTHY=true or HEALTHY=false, or unset it", v))
		} else {
			cfg.Healthy = b
		}
	}

	if v := getenv("ERROR_RATE"); v != "" {
		r, err := parseRate("ERROR_RATE", v)
		if err != nil {
			errs = append(errs, err)
		} else {
			cfg.ErrorRate = r
		}
	}

	if v := getenv("EXTRA_LATENCY"); v != "" {
		d, err := time.ParseDuration(v)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("EXTRA_LATENCY=%q is not a Go duration; give a number with a unit, e.g. EXTRA_LATENCY=1500ms or EXTRA_LATENCY=2s, or unset it", v))
		case d < 0:
			errs = append(errs, fmt.Errorf("EXTRA_LATENCY=%q is negative; use a positive duration such as EXTRA_LATENCY=1500ms, or unset it", v))
		default:
			cfg.ExtraLatency = d
		}
	}

	// LATENCY_RATE is accepted (and validated) even without EXTRA_LATENCY so
	// that toggling the latency on and off does not require touching it.
	if v := getenv("LATENCY_RATE"); v != "" {
		r, err := parseRate("LATENCY_RATE", v)
		if err != nil {
			errs = append(errs, err)
		} else {
			cfg.LatencyRate = r
		}
	}

	if v := getenv("BUCKETS"); v != "" {
		b, err := parseBuckets(v)
		if err != nil {
			errs = append(errs, err)
		} else {
			cfg.Buckets = b
		}
	}

	if len(errs) > 0 {
		return config{}, errors.Join(errs...)
	}
	return cfg, nil
}

// parseRate rejects NaN explicitly: it would pass a naive 0<=x<=1 range check
// by comparing false both ways, and then silently disable the fault.
func parseRate(name, v string) (float64, error) {
	r, err := strconv.ParseFloat(v, 64)
	if err != nil {
		return 0, fmt.Errorf("%s=%q is not a number; set a fraction between 0 and 1, e.g. %s=0.1, or unset it", name, v, name)
	}
	if math.IsNaN(r) || r < 0 || r > 1 {
		return 0, fmt.Errorf("%s=%q is out of range; set a fraction between 0 and 1, e.g. %s=0.1 (10%% of requests)", name, v, name)
	}
	return r, nil
}

const bucketsExample = "e.g. BUCKETS=0.1,0.5,1,2,5"

// parseBuckets reads comma-separated upper bounds in seconds. They must be
// positive, finite and strictly increasing: the client library would panic on
// an unordered list, and +Inf is always added by the histogram itself.
func parseBuckets(v string) ([]float64, error) {
	parts := strings.Split(v, ",")
	out := make([]float64, 0, len(parts))
	for i, p := range parts {
		p = strings.TrimSpace(p)
		if p == "" {
			return nil, fmt.Errorf("BUCKETS=%q has an empty entry; give comma-separated upper bounds in seconds, %s, or unset it", v, bucketsExample)
		}
		b, err := strconv.ParseFloat(p, 64)
		if err != nil || math.IsNaN(b) || math.IsInf(b, 0) {
			return nil, fmt.Errorf("BUCKETS=%q: %q is not a finite number of seconds; give comma-separated upper bounds in seconds, %s, or unset it", v, p, bucketsExample)
		}
		if b <= 0 {
			return nil, fmt.Errorf("BUCKETS=%q: %q is not positive; give comma-separated upper bounds in seconds greater than 0, %s, or unset it", v, p, bucketsExample)
		}
		if i > 0 && b <= out[i-1] {
			return nil, fmt.Errorf("BUCKETS=%q is not in increasing order (%q after %v); list each bound once, smallest first, %s, or unset it", v, p, out[i-1], bucketsExample)
		}
		out = append(out, b)
	}
	return out, nil
}
