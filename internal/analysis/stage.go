package analysis

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/gantry-ci/gantry/internal/ghaction"
)

// Inputs are gantry-analyze's inputs (actions/analyze/action.yml).
type Inputs struct {
	PrometheusURL     string        `input:"prometheus-url" required:"true"`
	PrometheusToken   string        `input:"prometheus-token" secret:"true"`
	PrometheusHeaders []string      `input:"prometheus-headers" list:"lines" secret:"true"`
	PrometheusUser    string        `input:"prometheus-username"`
	PrometheusPass    string        `input:"prometheus-password" secret:"true"`
	PrometheusCA      string        `input:"prometheus-ca"`
	SelectorNew       string        `input:"selector-new" required:"true"`
	SelectorStable    string        `input:"selector-stable"`
	Step              string        `input:"step"`
	Window            time.Duration `input:"window" default:"5m"`
	Interval          time.Duration `input:"interval" default:"30s"`
	MaxHold           time.Duration `input:"max-hold" default:"10m"`
	SuccessRate       string        `input:"success-rate" default:"95%"`
	P95               string        `input:"p95" default:"1000ms"`
	P99               string        `input:"p99" default:"2000ms"`
	ErrorRate         string        `input:"error-rate" default:"5%"`
	Memory            string        `input:"memory" default:"90%"`
	MinSamples        int           `input:"min-samples" default:"100"`
	Confidence        string        `input:"confidence" default:"0.99"`
	Margin            string        `input:"margin" default:"1%"`
	NoData            string        `input:"no-data" default:"fail"`
	Preset            string        `input:"preset"`
	Metric            []string      `input:"metric" list:"lines"`
	DecisionLog       string        `input:"decision-log" default:"gantry-analysis.jsonl"`
	Timeout           time.Duration `input:"timeout" default:"30m"`

	// Log receives progress lines; nil discards them.
	Log ghaction.Logger `input:"-"`
	// Querier replaces the Prometheus client (tests of the unit tier).
	Querier Querier `input:"-"`
}

// Outputs are gantry-analyze's results.
type Outputs struct {
	Verdict string `output:"verdict"`
	Reason  string `output:"reason"`
	// Why is the reason in one short line: each failed check's value
	// against its limit with the sample sizes.
	Why         string `output:"why"`
	DecisionLog string `output:"decision-log"`

	// Summary is the Markdown job summary (table and chart).
	Summary string `output:"-"`
}

// Config turns the action inputs into an engine configuration, reporting
// every bad input at once.
func (in Inputs) Config() (Config, error) {
	var errs []error
	share := func(name, v string) float64 {
		f, err := ParseShare(name, v)
		errs = append(errs, err)
		return f
	}
	latency := func(name, v string) time.Duration {
		d, err := ParseLatency(name, v)
		errs = append(errs, err)
		return d
	}
	cfg := Config{
		SelectorNew:    strings.TrimSpace(in.SelectorNew),
		SelectorStable: strings.TrimSpace(in.SelectorStable),
		Window:         in.Window,
		Interval:       in.Interval,
		MaxHold:        in.MaxHold,
		Step:           in.Step,
		Thresholds: Thresholds{
			SuccessRate: share("success-rate", in.SuccessRate),
			ErrorRate:   share("error-rate", in.ErrorRate),
			P95:         latency("p95", in.P95),
			P99:         latency("p99", in.P99),
		},
		Policy:  DefaultPolicy(),
		Queries: DefaultQueries(),
	}
	mem, memRequired, err := ParseMemory("memory", in.Memory)
	errs = append(errs, err)
	cfg.Thresholds.Memory, cfg.Thresholds.MemoryRequired = mem, memRequired
	cfg.Policy.MinSamples = int64(in.MinSamples)
	cfg.Policy.Margin = share("margin", in.Margin)
	cfg.Policy.NoData = NoDataPolicy(in.NoData)
	if c, err := strconv.ParseFloat(strings.TrimSuffix(in.Confidence, "%"), 64); err != nil {
		errs = append(errs, fmt.Errorf(`input "confidence": %q is not a number: write 0.99 or 99%%`, in.Confidence))
	} else {
		if strings.HasSuffix(in.Confidence, "%") {
			c /= 100
		}
		cfg.Policy.Confidence = c
	}
	if p := strings.TrimSpace(in.Preset); p == "" || p == "auto" {
		cfg.Detect = true
	} else if c, err := ConventionFor(p); err != nil {
		errs = append(errs, err)
	} else {
		cfg.Queries = QueriesForConvention(c)
	}
	cfg.Overrides = in.Metric
	for _, line := range in.Metric {
		errs = append(errs, cfg.Queries.SetOverride(line))
	}
	if err := errors.Join(errs...); err != nil {
		return cfg, err
	}
	return cfg, cfg.Validate()
}

// Connection is how the inputs reach Prometheus.
func (in Inputs) Connection() Connection {
	return Connection{URL: in.PrometheusURL, Token: in.PrometheusToken, Username: in.PrometheusUser, Password: in.PrometheusPass,
		Headers: in.PrometheusHeaders, CA: in.PrometheusCA, Timeout: 30 * time.Second}
}

// Run is gantry-analyze: one analysis step against Prometheus. A verdict is
// an outcome, not an error: err is non-nil only when the analysis could not
// be set up. Callers map fail and error verdicts to a failed step.
func Run(ctx context.Context, in Inputs) (Outputs, error) {
	if in.Log == nil {
		in.Log = ghaction.Discard{}
	}
	cfg, err := in.Config()
	if err != nil {
		return Outputs{}, err
	}
	q := in.Querier
	if q == nil {
		if q, err = in.Connection().Prometheus(); err != nil {
			return Outputs{}, err
		}
	}
	if in.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, in.Timeout)
		defer cancel()
	}

	var logFile io.Writer = io.Discard
	out := Outputs{}
	if in.DecisionLog != "" {
		abs, err := filepath.Abs(in.DecisionLog)
		if err != nil {
			return out, err
		}
		f, err := os.OpenFile(abs, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err != nil {
			return out, fmt.Errorf(`input "decision-log": %w`, err)
		}
		defer f.Close()
		logFile, out.DecisionLog = f, abs
	}
	var mine bytes.Buffer
	e, err := New(cfg, q)
	if err != nil {
		return out, err
	}
	e.Log = io.MultiWriter(logFile, &mine, progress{log: in.Log})

	end := in.Log.Group(fmt.Sprintf("Canary analysis {%s} vs {%s}: window %v, every %v, max hold %v", cfg.SelectorNew, cfg.SelectorStable, cfg.Window, cfg.Interval, cfg.MaxHold))
	res, err := e.Run(ctx)
	end()
	if err != nil && !errors.Is(err, ErrNoBucket) && !errors.Is(err, ErrConvention) {
		res.Verdict, res.Reason = Error, fmt.Sprintf("analysis stopped: %v", err)
	}
	out.Verdict, out.Reason, out.Why = string(res.Verdict), res.Reason, res.Why()
	lines, _ := ReadLog(&mine)
	out.Summary = Render(lines, res.Verdict, res.Reason)
	return out, nil
}

// progress turns overall decision-log lines into one log line per
// evaluation for the person watching the run.
type progress struct{ log ghaction.Logger }

func (p progress) Write(b []byte) (int, error) {
	lines, err := ReadLog(bytes.NewReader(b))
	if err == nil {
		for _, l := range lines {
			switch l.Metric {
			case "overall":
				p.log.Infof("%5.0fs %-12s %s", l.ElapsedS, l.Verdict, l.Reason)
			case "convention":
				p.log.Infof("metrics: %s", l.Reason)
			}
		}
	}
	return len(b), nil
}
