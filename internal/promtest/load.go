package promtest

import (
	"io"
	"maps"
	"net/http"
	"net/url"
	"sync"
	"testing"
	"time"
)

// Load limits.
const (
	maxInFlight    = 64
	requestTimeout = 10 * time.Second
)

// Stats counts what a Load did.
type Stats struct {
	Sent    int         // requests sent
	Codes   map[int]int // answered requests by status code
	Errors  int         // requests without an answer (refused, timed out, ...)
	Skipped int         // ticks dropped because 64 requests were still in flight
}

// Load sends GET requests to rawURL (e.g. app.URL+"/api/prompts") at about rps per second, each in its own
// goroutine, until stop is called or the test ends. At most 64 requests are
// in flight; a tick that finds them all busy is skipped (counted in
// Stats.Skipped) rather than queued, so a slow target slows nothing down but
// its own load. Each request times out after 10 s. stop waits for the
// requests in flight and returns the counts; calling it again returns the
// same counts. rps <= 0 sends nothing.
func Load(t testing.TB, rawURL string, rps float64) (stop func() Stats) {
	t.Helper()
	if u, err := url.Parse(rawURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		t.Fatalf("Load: %q is not an http(s) URL", rawURL)
	}
	if rps <= 0 {
		return func() Stats { return Stats{Codes: map[int]int{}} }
	}

	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = maxInFlight
	client := &http.Client{Timeout: requestTimeout, Transport: tr}

	var (
		mu       sync.Mutex
		stats    = Stats{Codes: map[int]int{}}
		inFlight sync.WaitGroup
		slots    = make(chan struct{}, maxInFlight)
		quit     = make(chan struct{})
		loopDone = make(chan struct{})
	)
	get := func() {
		defer inFlight.Done()
		defer func() { <-slots }()
		resp, err := client.Get(rawURL)
		if err != nil {
			mu.Lock()
			stats.Errors++
			mu.Unlock()
			return
		}
		// Reading the body to the end lets the connection be reused.
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		mu.Lock()
		stats.Codes[resp.StatusCode]++
		mu.Unlock()
	}
	fire := func() {
		select {
		case slots <- struct{}{}:
			inFlight.Add(1)
			mu.Lock()
			stats.Sent++
			mu.Unlock()
			go get()
		default:
			mu.Lock()
			stats.Skipped++
			mu.Unlock()
		}
	}

	interval := max(time.Duration(float64(time.Second)/rps), time.Microsecond)
	go func() {
		defer close(loopDone)
		fire()
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			select {
			case <-quit:
				return
			case <-tick.C:
				fire()
			}
		}
	}()

	stop = sync.OnceValue(func() Stats {
		close(quit)
		<-loopDone
		inFlight.Wait()
		tr.CloseIdleConnections()
		mu.Lock()
		defer mu.Unlock()
		out := stats
		out.Codes = maps.Clone(stats.Codes)
		return out
	})
	t.Cleanup(func() { stop() })
	return stop
}
