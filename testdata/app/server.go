package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"regexp"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// durationBuckets must contain 1 and 2: canary analysis derives the share of
// requests slower than 1 s and 2 s from the le="1" and le="2" buckets, and a
// missing boundary would make those queries silently interpolate. BUCKETS
// replaces them (config.Buckets), e.g. to test analysis against other bounds.
var durationBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10}

// histogramBuckets is BUCKETS when set, else durationBuckets.
func (c config) histogramBuckets() []float64 {
	if c.Buckets != nil {
		return c.Buckets
	}
	return durationBuckets
}

// statusClientClosed follows the nginx convention. Recording a request the
// client gave up on as 200 would hide injected latency from error-rate
// analysis, while 5xx would blame the server for the client's timeout.
const statusClientClosed = 499

// maxRenderBody bounds what a single render request can make us buffer.
const maxRenderBody = 1 << 20

type server struct {
	cfg      config
	roll     func() float64
	duration *prometheus.HistogramVec
	requests *prometheus.CounterVec
}

// newServer builds its own registry so that every test (and every server in
// one process) starts from zero counts instead of sharing global state.
func newServer(cfg config) http.Handler {
	reg := prometheus.NewRegistry()
	s := &server{
		cfg:  cfg,
		roll: rollFunc(cfg.Rand),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "http_request_duration_seconds",
			Help:    "Time spent answering HTTP requests, including injected latency.",
			Buckets: cfg.histogramBuckets(),
		}, []string{"method", "route", "code"}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "http_requests_total",
			Help: "HTTP requests answered, by method, route and status code.",
		}, []string{"method", "route", "code"}),
	}
	reg.MustRegister(
		s.duration,
		s.requests,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)

	mux := http.NewServeMux()
	s.handle(mux, "GET", "/healthz", false, s.healthz)
	s.handle(mux, "GET", "/readyz", false, s.readyz)
	s.handle(mux, "GET", "/api/prompts", true, s.listPrompts)
	s.handle(mux, "POST", "/api/prompts/render", true, s.renderPrompt)
	s.handle(mux, "GET", "/api/version", true, s.version)
	// Scrapes stay out of the request metrics: they would add a steady stream
	// of fast 200s that dilutes latency and error ratios of real traffic.
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	return mux
}

// rollFunc serialises access to a caller-supplied *rand.Rand, which is not
// safe for concurrent use; the package-level generator already is.
func rollFunc(r *rand.Rand) func() float64 {
	if r == nil {
		return rand.Float64
	}
	var mu sync.Mutex
	return func() float64 {
		mu.Lock()
		defer mu.Unlock()
		return r.Float64()
	}
}

// handle registers routes one by one, rather than instrumenting the whole mux,
// so the route label is always the fixed path template: unknown URLs cannot
// blow up label cardinality.
func (s *server) handle(mux *http.ServeMux, method, route string, faults bool, h http.HandlerFunc) {
	var next http.Handler = h
	if faults {
		next = s.injectFaults(next)
	}
	// Every series a route can produce exists from the start, at zero:
	// Prometheus' increase() cannot count the first sample of a series that
	// appears mid-window, so a 5xx series born when a canary starts failing
	// would hide its first errors from the analysis.
	codes := []string{"200"}
	if faults {
		codes = append(codes, "500")
	}
	for _, code := range codes {
		s.duration.WithLabelValues(method, route, code)
		s.requests.WithLabelValues(method, route, code)
	}
	mux.Handle(method+" "+route, s.instrument(route, next))
}

func (s *server) instrument(route string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w}
		next.ServeHTTP(rec, r)
		code := strconv.Itoa(rec.status())
		s.duration.WithLabelValues(r.Method, route, code).Observe(time.Since(start).Seconds())
		s.requests.WithLabelValues(r.Method, route, code).Inc()
	})
}

// injectFaults runs inside instrument so that injected latency and errors are
// exactly what the metrics (and therefore canary analysis) observe. Latency is
// applied before the error decision: a failing canary that is also slow is the
// more realistic combination.
func (s *server) injectFaults(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if d := s.cfg.ExtraLatency; d > 0 && s.cfg.LatencyRate > 0 && s.roll() < s.cfg.LatencyRate {
			t := time.NewTimer(d)
			select {
			case <-t.C:
			case <-r.Context().Done():
				// Otherwise a client that times out would keep a goroutine
				// parked for the full delay and stall graceful shutdown.
				t.Stop()
				w.WriteHeader(statusClientClosed)
				return
			}
		}
		if s.cfg.ErrorRate > 0 && s.roll() < s.cfg.ErrorRate {
			writeJSON(w, http.StatusInternalServerError, errorBody{Error: "injected fault (ERROR_RATE)"})
			return
		}
		next.ServeHTTP(w, r)
	})
}

// statusRecorder remembers the status code for the metrics labels.
type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (r *statusRecorder) WriteHeader(code int) {
	if r.code == 0 {
		r.code = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	if r.code == 0 {
		r.code = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach Flush and deadlines underneath.
func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// status mirrors net/http, which sends 200 for a handler that writes nothing.
func (r *statusRecorder) status() int {
	if r.code == 0 {
		return http.StatusOK
	}
	return r.code
}

func (s *server) healthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if !s.cfg.Healthy {
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, "unhealthy")
		return
	}
	io.WriteString(w, "ok")
}

func (s *server) readyz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	io.WriteString(w, "ready")
}

type prompt struct {
	ID          string   `json:"id"`
	Name        string   `json:"name"`
	Description string   `json:"description"`
	Template    string   `json:"template"`
	Vars        []string `json:"vars"`
}

var samplePrompts = []prompt{
	{
		ID:          "summarize",
		Name:        "Summarize",
		Description: "Condense a document for a given audience.",
		Template:    "Summarize the following text for {{audience}} in at most {{sentences}} sentences:\n\n{{text}}",
		Vars:        []string{"audience", "sentences", "text"},
	},
	{
		ID:          "translate",
		Name:        "Translate",
		Description: "Translate text while keeping its tone.",
		Template:    "Translate the following text into {{language}}, keeping a {{tone}} tone:\n\n{{text}}",
		Vars:        []string{"language", "tone", "text"},
	},
	{
		ID:          "code-review",
		Name:        "Code review",
		Description: "Ask for a focused review of a code change.",
		Template:    "Review this {{language}} change with a focus on {{focus}}. List concrete issues first.\n\n{{diff}}",
		Vars:        []string{"language", "focus", "diff"},
	},
}

func (s *server) listPrompts(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, samplePrompts)
}

type versionBody struct {
	Version  string `json:"version"`
	Hostname string `json:"hostname"`
}

func (s *server) version(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, versionBody{Version: s.cfg.Version, Hostname: s.cfg.Hostname})
}

type renderRequest struct {
	Template string         `json:"template"`
	Vars     map[string]any `json:"vars"`
}

type renderResponse struct {
	Output string `json:"output"`
	// Missing lists placeholders left in the output because no value was
	// given, so callers can tell a typo from intentional literal braces.
	Missing []string `json:"missing,omitempty"`
}

type errorBody struct {
	Error string `json:"error"`
}

func (s *server) renderPrompt(w http.ResponseWriter, r *http.Request) {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxRenderBody))
	// Numbers keep their original spelling; float64 would turn 100000000 into 1e+08.
	dec.UseNumber()
	var req renderRequest
	if err := dec.Decode(&req); err != nil {
		writeJSON(w, http.StatusBadRequest, errorBody{Error: "invalid JSON body: " + err.Error()})
		return
	}
	if err := dec.Decode(&struct{}{}); !errors.Is(err, io.EOF) {
		writeJSON(w, http.StatusBadRequest, errorBody{Error: "invalid JSON body: unexpected data after the JSON object"})
		return
	}

	vars := make(map[string]string, len(req.Vars))
	for k, v := range req.Vars {
		switch v := v.(type) {
		case string:
			vars[k] = v
		case json.Number:
			vars[k] = v.String()
		case bool:
			vars[k] = strconv.FormatBool(v)
		default:
			writeJSON(w, http.StatusBadRequest, errorBody{Error: fmt.Sprintf("vars.%s must be a string, number or boolean", k)})
			return
		}
	}

	out, missing := render(req.Template, vars)
	writeJSON(w, http.StatusOK, renderResponse{Output: out, Missing: missing})
}

var placeholder = regexp.MustCompile(`\{\{\s*([A-Za-z_][A-Za-z0-9_.-]*)\s*\}\}`)

// render substitutes in a single pass, so a value that itself contains
// "{{other}}" is inserted verbatim instead of being expanded again.
func render(tmpl string, vars map[string]string) (string, []string) {
	var missing []string
	seen := map[string]bool{}
	out := placeholder.ReplaceAllStringFunc(tmpl, func(m string) string {
		name := placeholder.FindStringSubmatch(m)[1]
		if v, ok := vars[name]; ok {
			return v
		}
		if !seen[name] {
			seen[name] = true
			missing = append(missing, name)
		}
		return m
	})
	return out, missing
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	// The status line is already sent; an encode error here can only be a
	// broken connection, which there is no one left to report to.
	_ = json.NewEncoder(w).Encode(v)
}
