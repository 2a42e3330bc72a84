package ghaction_test

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/gantry-ci/gantry/internal/ghaction"
	"github.com/gantry-ci/gantry/internal/runctx"
)

func TestEnvLogger(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		do   func(ghaction.Logger)
		want string
	}{
		{
			name: "info is a plain line",
			do:   func(l ghaction.Logger) { l.Infof("pushed %d tags", 3) },
			want: "pushed 3 tags\n",
		},
		{
			name: "warning annotation",
			do:   func(l ghaction.Logger) { l.Warningf("base %s is not multi-arch", "alpine") },
			want: "::warning::base alpine is not multi-arch\n",
		},
		{
			name: "group and its end",
			do: func(l ghaction.Logger) {
				end := l.Group("Building ghcr.io/acme/app")
				l.Infof("inside")
				end()
			},
			want: "::group::Building ghcr.io/acme/app\ninside\n::endgroup::\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e, w := newEnv(nil)
			tt.do(e)
			if w.String() != tt.want {
				t.Errorf("log = %q, want %q", w.String(), tt.want)
			}
		})
	}
}

func TestFailKeepsAMultiLineErrorInOneAnnotation(t *testing.T) {
	t.Parallel()
	e, w := newEnv(nil)
	e.Fail(errors.Join(
		errors.New(`input "jobs": "four" is not a whole number`),
		fmt.Errorf("100%% sure: %w", errors.New("second")),
	))
	want := "::error::input \"jobs\": \"four\" is not a whole number%0A100%25 sure: second\n"
	if w.String() != want {
		t.Errorf("Fail wrote %q, want %q", w.String(), want)
	}
}

func TestLookup(t *testing.T) {
	t.Parallel()
	e, _ := newEnv(map[string]string{"SOURCE_DATE_EPOCH": "1763643791"})
	if got := e.Lookup("SOURCE_DATE_EPOCH"); got != "1763643791" {
		t.Errorf("Lookup(SOURCE_DATE_EPOCH) = %q", got)
	}
	if got := e.Lookup("RUNNER_DEBUG"); got != "" {
		t.Errorf("Lookup of an unset variable = %q, want empty", got)
	}
}

// Run reads the run once, however often a stage asks; a run given in the
// options is used as it is, without reading the environment.
func TestRun(t *testing.T) {
	t.Parallel()
	var reads atomic.Int32
	getenv := func(k string) string {
		switch k {
		case "GITHUB_SHA":
			reads.Add(1)
			return "3f1c5a7e9b2d4c6a8e0f1b3d5c7e9a1b3d5f7a9c"
		case "GITHUB_RUN_ID":
			return "not-a-number"
		}
		return ""
	}
	e := ghaction.NewWith(ghaction.Options{Getenv: getenv, Log: io.Discard})
	first, err := e.Run()
	if err == nil || !strings.Contains(err.Error(), "GITHUB_RUN_ID") {
		t.Errorf("Run error = %v, want one naming GITHUB_RUN_ID", err)
	}
	again, err2 := e.Run()
	if first == nil || again != first || err2 != err || reads.Load() != 1 {
		t.Errorf("second Run = %p, %v after %p, %v; GITHUB_SHA read %d times, want once", again, err2, first, err, reads.Load())
	}
	if first.SHA != "3f1c5a7e9b2d4c6a8e0f1b3d5c7e9a1b3d5f7a9c" {
		t.Errorf("SHA = %q", first.SHA)
	}

	given := &runctx.Run{CI: runctx.LocalCI, Local: true, SHA: "abc"}
	e = ghaction.NewWith(ghaction.Options{Getenv: getenv, Log: io.Discard, Run: given})
	if r, err := e.Run(); r != given || err != nil || reads.Load() != 1 {
		t.Errorf("Run with Options.Run = %p, %v; want the given run %p and the environment unread", r, err, given)
	}
}

func TestDiscard(t *testing.T) {
	t.Parallel()
	var l ghaction.Logger = ghaction.Discard{}
	l.Infof("x")
	l.Warningf("y")
	end := l.Group("z")
	if end == nil {
		t.Fatal("Discard.Group returned a nil func")
	}
	end()
}
