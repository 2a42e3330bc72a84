package analysis

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
)

// Prometheus queries a Prometheus server's HTTP API.
type Prometheus struct {
	api promv1.API
}

// Connection is how to reach a PromQL-compatible endpoint (Prometheus,
// Thanos, Mimir, VictoriaMetrics, Grafana Cloud ...): the action inputs
// prometheus-url, -token, -username, -password, -headers and -ca.
type Connection struct {
	URL      string
	Token    string   // bearer token
	Username string   // basic auth, with Password
	Password string   //
	Headers  []string // "Name: value" lines, e.g. X-Scope-OrgID for Mimir
	// CA is PEM content or the path of a PEM file: certificates trusted
	// for the endpoint's TLS, besides the system's.
	CA      string
	Timeout time.Duration
}

// Prometheus returns a client for the connection, refusing inconsistent
// inputs by name.
func (c Connection) Prometheus() (*Prometheus, error) {
	if c.Token != "" && c.Username != "" {
		return nil, errors.New(`inputs "prometheus-token" and "prometheus-username": set one (a bearer token, or basic auth), not both`)
	}
	if (c.Username == "") != (c.Password == "") {
		return nil, errors.New(`inputs "prometheus-username" and "prometheus-password": basic auth needs both`)
	}
	headers := map[string]string{}
	for _, h := range c.Headers {
		k, v, ok := strings.Cut(h, ":")
		if !ok || strings.TrimSpace(k) == "" {
			return nil, errors.New(`input "prometheus-headers": each line must be Name: value`)
		}
		headers[strings.TrimSpace(k)] = strings.TrimSpace(v)
	}
	tr := api.DefaultRoundTripper.(*http.Transport).Clone()
	if c.CA != "" {
		pem := []byte(c.CA)
		if !strings.Contains(c.CA, "-----BEGIN") {
			b, err := os.ReadFile(c.CA)
			if err != nil {
				return nil, fmt.Errorf(`input "prometheus-ca": neither PEM content nor a readable file: %w`, err)
			}
			pem = b
		}
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, errors.New(`input "prometheus-ca": no PEM certificate in it`)
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	var rt http.RoundTripper = tr
	if c.Token != "" || c.Username != "" || len(headers) > 0 {
		rt = headerTransport{next: rt, token: c.Token, user: c.Username, password: c.Password, headers: headers}
	}
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	cl, err := api.NewClient(api.Config{Address: c.URL, Client: &http.Client{Transport: rt, Timeout: timeout}})
	if err != nil {
		return nil, fmt.Errorf(`input "prometheus-url": %q: %w`, c.URL, err)
	}
	return &Prometheus{api: promv1.NewAPI(cl)}, nil
}

// NewPrometheus connects to url. token, when set, is sent as a bearer token;
// headers are added to every request (e.g. X-Scope-OrgID for Mimir/Cortex).
func NewPrometheus(url, token string, headers map[string]string, timeout time.Duration) (*Prometheus, error) {
	var lines []string
	for k, v := range headers {
		lines = append(lines, k+": "+v)
	}
	return Connection{URL: url, Token: token, Headers: lines, Timeout: timeout}.Prometheus()
}

type headerTransport struct {
	next           http.RoundTripper
	token          string
	user, password string
	headers        map[string]string
}

func (t headerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	for k, v := range t.headers {
		req.Header.Set(k, v)
	}
	if t.token != "" {
		req.Header.Set("Authorization", "Bearer "+t.token)
	}
	if t.user != "" {
		req.SetBasicAuth(t.user, t.password)
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
