package analysis

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"time"

	"github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
)

// Prometheus queries a Prometheus server's HTTP API.
type Prometheus struct {
	api promv1.API
}

// NewPrometheus connects to url. token, when set, is sent as a bearer token;
// headers are added to every request (e.g. X-Scope-OrgID for Mimir/Cortex).
func NewPrometheus(url, token string, headers map[string]string, timeout time.Duration) (*Prometheus, error) {
	var rt http.RoundTripper = api.DefaultRoundTripper
	if token != "" || len(headers) > 0 {
		rt = headerTransport{next: rt, token: token, headers: headers}
	}
	c, err := api.NewClient(api.Config{Address: url, Client: &http.Client{Transport: rt, Timeout: timeout}})
	if err != nil {
		return nil, fmt.Errorf(`input "prometheus-url": %q: %w`, url, err)
	}
	return &Prometheus{api: promv1.NewAPI(c)}, nil
}

type headerTransport struct {
	next    http.RoundTripper
	token   string
	headers map[string]string
}

func (t headerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	for k, v := range t.headers {
		req.Header.Set(k, v)
	}
	if t.token != "" {
		req.Header.Set("Authorization", "Bearer "+t.token)
	}
	return t.next.RoundTrip(req)
}

// Query runs an instant query and sums the result: a scalar, or every
// sample of a vector. An empty vector is ok=false.
func (p *Prometheus) Query(ctx context.Context, expr string, at time.Time) (float64, bool, error) {
	v, _, _, err := p.api.Query(ctx, expr, at)
	if err != nil {
		return 0, false, err
	}
	switch r := v.(type) {
	case *model.Scalar:
		return float64(r.Value), true, nil
	case model.Vector:
		if len(r) == 0 {
			return 0, false, nil
		}
		var sum float64
		for _, s := range r {
			sum += float64(s.Value)
		}
		return sum, true, nil
	}
	return 0, false, fmt.Errorf("query %s: unexpected result type %s", expr, v.Type())
}

// Labels returns the distinct values of label in the result of expr.
func (p *Prometheus) Labels(ctx context.Context, expr, label string, at time.Time) ([]string, error) {
	v, _, _, err := p.api.Query(ctx, expr, at)
	if err != nil {
		return nil, fmt.Errorf("query %s: %w", expr, err)
	}
	vec, ok := v.(model.Vector)
	if !ok {
		return nil, fmt.Errorf("query %s: want a vector, got %s", expr, v.Type())
	}
	seen := map[string]bool{}
	var out []string
	for _, s := range vec {
		l := string(s.Metric[model.LabelName(label)])
		if l != "" && !seen[l] {
			seen[l] = true
			out = append(out, l)
		}
	}
	sort.Strings(out)
	return out, nil
}
