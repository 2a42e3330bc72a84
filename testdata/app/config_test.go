package main

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func envFunc(env map[string]string) func(string) string {
	return func(k string) string { return env[k] }
}

func TestLoadConfigDefaults(t *testing.T) {
	cfg, err := loadConfig(envFunc(nil))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.ListenAddr != ":8080" || cfg.Version != "dev" || !cfg.Healthy ||
		cfg.ErrorRate != 0 || cfg.ExtraLatency != 0 || cfg.LatencyRate != 1 || cfg.Buckets != nil {
		t.Errorf("defaults = %+v", cfg)
	}
}

func TestLoadConfigValues(t *testing.T) {
	cfg, err := loadConfig(envFunc(map[string]string{
		"LISTEN_ADDR":   "127.0.0.1:9090",
		"APP_VERSION":   "v2.0.1",
		"HEALTHY":       "false",
		"ERROR_RATE":    "0.25",
		"EXTRA_LATENCY": "1500ms",
		"LATENCY_RATE":  "0.5",
		"BUCKETS":       "0.1, 0.5,5",
	}))
	if err != nil {
		t.Fatal(err)
	}
	want := config{
		ListenAddr:   "127.0.0.1:9090",
		Version:      "v2.0.1",
		Healthy:      false,
		ErrorRate:    0.25,
		ExtraLatency: 1500 * time.Millisecond,
		LatencyRate:  0.5,
		Buckets:      []float64{0.1, 0.5, 5},
	}
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("got %+v, want %+v", cfg, want)
	}
}

func TestLoadConfigInvalid(t *testing.T) {
	tests := []struct {
		name, value string
		hint        string // part of the fix the message must suggest
	}{
		{"ERROR_RATE", "abc", "between 0 and 1"},
		{"ERROR_RATE", "1.5", "between 0 and 1"},
		{"ERROR_RATE", "-0.1", "between 0 and 1"},
		{"ERROR_RATE", "NaN", "between 0 and 1"},
		{"LATENCY_RATE", "2", "between 0 and 1"},
		{"LATENCY_RATE", "half", "between 0 and 1"},
		{"EXTRA_LATENCY", "1500", "EXTRA_LATENCY=1500ms"},
		{"EXTRA_LATENCY", "soon", "EXTRA_LATENCY=1500ms"},
		{"EXTRA_LATENCY", "-1s", "positive duration"},
		{"HEALTHY", "maybe", "HEALTHY=false"},
		{"LISTEN_ADDR", "8080", "LISTEN_ADDR=:8080"},
		{"BUCKETS", "0.1,fast,5", "BUCKETS=0.1,0.5,1,2,5"},
		{"BUCKETS", "0.1,,5", "BUCKETS=0.1,0.5,1,2,5"},
		{"BUCKETS", "0.1,5,", "BUCKETS=0.1,0.5,1,2,5"},
		{"BUCKETS", "0.5,0.1", "increasing order"},
		{"BUCKETS", "1,1", "increasing order"},
		{"BUCKETS", "0,1", "greater than 0"},
		{"BUCKETS", "-1,1", "greater than 0"},
		{"BUCKETS", "1,+Inf", "finite"},
		{"BUCKETS", "NaN", "finite"},
		{"BUCKETS", "1s,2s", "in seconds"},
	}
	for _, tt := range tests {
		t.Run(tt.name+"="+tt.value, func(t *testing.T) {
			_, err := loadConfig(envFunc(map[string]string{tt.name: tt.value}))
			if err == nil {
				t.Fatalf("%s=%q accepted", tt.name, tt.value)
			}
			msg := err.Error()
			if !strings.Contains(msg, tt.name) || !strings.Contains(msg, tt.value) || !strings.Contains(msg, tt.hint) {
				t.Errorf("error %q should name %s, its value %q and suggest %q", msg, tt.name, tt.value, tt.hint)
			}
		})
	}
}

func TestLoadConfigReportsAllErrors(t *testing.T) {
	_, err := loadConfig(envFunc(map[string]string{
		"ERROR_RATE":    "x",
		"EXTRA_LATENCY": "y",
	}))
	if err == nil || !strings.Contains(err.Error(), "ERROR_RATE") || !strings.Contains(err.Error(), "EXTRA_LATENCY") {
		t.Errorf("want both variables reported, got %v", err)
	}
}
