package promtest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// Sample is one element of an instant vector.
type Sample struct {
	Labels map[string]string // including __name__ when the expression keeps it
	Value  float64
}

// Query runs an instant query and returns its value: a scalar, or the sum of
// a vector's elements. ok is false when the vector is empty (no series
// matched, which PromQL does not report as 0).
func Query(ctx context.Context, promURL, expr string) (value float64, ok bool, err error) {
	res, err := instantQuery(ctx, promURL, expr)
	if err != nil {
		return 0, false, err
	}
	switch res.ResultType {
	case "scalar":
		v, err := parsePoint(res.Result)
		if err != nil {
			return 0, false, fmt.Errorf("query %q: %w", expr, err)
		}
		return v, true, nil
	case "vector":
		samples, err := parseVector(res.Result)
		if err != nil {
			return 0, false, fmt.Errorf("query %q: %w", expr, err)
		}
		var sum float64
		for _, s := range samples {
			sum += s.Value
		}
		return sum, len(samples) > 0, nil
	default:
		return 0, false, fmt.Errorf("query %q returned a %s; want a scalar or an instant vector", expr, res.ResultType)
	}
}

// QueryVector runs an instant query that must return an instant vector and
// returns its elements with their labels.
func QueryVector(ctx context.Context, promURL, expr string) ([]Sample, error) {
	res, err := instantQuery(ctx, promURL, expr)
	if err != nil {
		return nil, err
	}
	if res.ResultType != "vector" {
		return nil, fmt.Errorf("query %q returned a %s; want an instant vector", expr, res.ResultType)
	}
	samples, err := parseVector(res.Result)
	if err != nil {
		return nil, fmt.Errorf("query %q: %w", expr, err)
	}
	return samples, nil
}

type queryData struct {
	ResultType string          `json:"resultType"`
	Result     json.RawMessage `json:"result"`
}

// instantQuery calls /api/v1/query and returns the data of a successful
// answer; a PromQL error comes back with Prometheus' own message.
func instantQuery(ctx context.Context, promURL, expr string) (queryData, error) {
	u := strings.TrimRight(promURL, "/") + "/api/v1/query?" + url.Values{"query": {expr}}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return queryData{}, err
	}
	resp, err := clientFor(promURL).Do(req)
	if err != nil {
		return queryData{}, fmt.Errorf("query %q: %w", expr, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return queryData{}, fmt.Errorf("query %q: reading the answer: %w", expr, err)
	}
	var r struct {
		Status    string    `json:"status"`
		ErrorType string    `json:"errorType"`
		Error     string    `json:"error"`
		Data      queryData `json:"data"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return queryData{}, fmt.Errorf("query %q: %s: not a Prometheus API answer: %.200s", expr, resp.Status, body)
	}
	if r.Status != "success" {
		return queryData{}, fmt.Errorf("query %q: %s: %s", expr, r.ErrorType, r.Error)
	}
	return r.Data, nil
}

func parseVector(raw json.RawMessage) ([]Sample, error) {
	var elems []struct {
		Metric map[string]string `json:"metric"`
		Value  json.RawMessage   `json:"value"`
	}
	if err := json.Unmarshal(raw, &elems); err != nil {
		return nil, fmt.Errorf("decoding the vector: %w", err)
	}
	out := make([]Sample, 0, len(elems))
	for _, e := range elems {
		v, err := parsePoint(e.Value)
		if err != nil {
			return nil, err
		}
		out = append(out, Sample{Labels: e.Metric, Value: v})
	}
	return out, nil
}

// parsePoint decodes [<unix time>, "<value>"]; the value is a string so that
// NaN and ±Inf survive JSON.
func parsePoint(raw json.RawMessage) (float64, error) {
	var point []any
	if err := json.Unmarshal(raw, &point); err != nil {
		return 0, fmt.Errorf("decoding a sample: %w", err)
	}
	if len(point) != 2 {
		return 0, errors.New("decoding a sample: want [time, value]")
	}
	s, ok := point[1].(string)
	if !ok {
		return 0, fmt.Errorf("decoding a sample: value %v is not a string", point[1])
	}
	return strconv.ParseFloat(s, 64)
}
