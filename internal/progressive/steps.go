package progressive

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// DefaultSteps is the production schedule of the deployment guide: 10, 50,
// 80 and 100 percent of traffic on the canary, five minutes each.
const DefaultSteps = "10:5m,50:5m,80:5m,100:5m"

// Step is one stage of a progressive rollout: Weight percent of the traffic
// goes to the canary, for at least Hold before the next step.
type Step struct {
	Weight int
	Hold   time.Duration
}

// Steps is a rollout schedule; weights increase strictly and the last one
// is 100.
type Steps []Step

// ParseSteps reads the steps input, "weight:hold" items separated by
// commas, e.g. "10:5m,50:5m,80:5m,100:5m". A weight is a whole percentage
// from 1 to 100 (a trailing "%" is allowed), weights increase strictly and
// the last is 100, so a finished schedule has moved all traffic. A hold is a
// Go duration ("5m", "90s", "1h30m", "0s").
func ParseSteps(s string) (Steps, error) {
	if strings.TrimSpace(s) == "" {
		return nil, fmt.Errorf(`input "steps" is empty: give weight:hold steps ending at 100, e.g. %s`, DefaultSteps)
	}
	items := strings.Split(s, ",")
	steps := make(Steps, 0, len(items))
	for i, item := range items {
		item = strings.TrimSpace(item)
		n := i + 1
		if item == "" {
			return nil, fmt.Errorf(`input "steps": step %d is empty (a stray comma in %q?): give weight:hold steps, e.g. %s`, n, s, DefaultSteps)
		}
		w, h, ok := strings.Cut(item, ":")
		if !ok {
			return nil, fmt.Errorf(`input "steps": step %d %q has no hold: write weight:hold, e.g. %s:5m`, n, item, strings.TrimSpace(item))
		}
		w, h = strings.TrimSpace(w), strings.TrimSpace(h)
		weight, err := strconv.Atoi(strings.TrimSuffix(w, "%"))
		if err != nil {
			return nil, fmt.Errorf(`input "steps": step %d %q: weight %q is not a whole number: write a percentage from 1 to 100, e.g. 10:5m`, n, item, w)
		}
		if weight < 1 || weight > 100 {
			return nil, fmt.Errorf(`input "steps": step %d %q: weight %d is out of range: a step sends 1 to 100 percent of traffic to the canary`, n, item, weight)
		}
		if h == "" {
			return nil, fmt.Errorf(`input "steps": step %d %q has an empty hold: give a duration such as 5m or 30s`, n, item)
		}
		hold, err := time.ParseDuration(h)
		if err != nil {
			return nil, fmt.Errorf(`input "steps": step %d %q: hold %q is not a duration: use Go units such as 30s, 5m, 1h30m`, n, item, h)
		}
		if hold < 0 {
			return nil, fmt.Errorf(`input "steps": step %d %q: hold %s is negative`, n, item, h)
		}
		if i > 0 && weight <= steps[i-1].Weight {
			return nil, fmt.Errorf(`input "steps": step %d %q: weight %d does not increase on step %d's %d: weights must increase strictly, e.g. %s`, n, item, weight, i, steps[i-1].Weight, DefaultSteps)
		}
		steps = append(steps, Step{Weight: weight, Hold: hold})
	}
	if last := steps[len(steps)-1]; last.Weight != 100 {
		return nil, fmt.Errorf(`input "steps": the last step sends %d%% to the canary, it must end at 100 so the rollout completes: append e.g. ,100:5m`, last.Weight)
	}
	return steps, nil
}

// Holds is the sum of the steps' holds: the least time they take.
func (s Steps) Holds() time.Duration {
	var total time.Duration
	for _, st := range s {
		total += st.Hold
	}
	return total
}

// String writes the steps in the form ParseSteps reads, with short
// durations ("10:5m,100:30s").
func (s Steps) String() string {
	var b strings.Builder
	for i, st := range s {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(st.Weight))
		b.WriteByte(':')
		b.WriteString(shortDuration(st.Hold))
	}
	return b.String()
}

// shortDuration drops the zero units time.Duration.String writes: "5m"
// rather than "5m0s".
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
