package analysis

import (
	"math"
)

// Z returns the one-sided standard normal quantile for a confidence level:
// Z(0.95) ≈ 1.645, Z(0.99) ≈ 2.326.
func Z(confidence float64) float64 {
	return math.Sqrt2 * math.Erfinv(2*confidence-1)
}

// Wilson returns the Wilson score interval for a proportion of bad out of
// total at quantile z. It stays inside [0, 1] and behaves at 0 and at total
// events, where the normal approximation claims certainty it does not have.
// With no observations the interval is [0, 1]: nothing is known.
func Wilson(bad, total int64, z float64) (lower, upper float64) {
	if total <= 0 {
		return 0, 1
	}
	n := float64(total)
	p := float64(bad) / n
	z2 := z * z
	denom := 1 + z2/n
	center := (p + z2/(2*n)) / denom
	half := z / denom * math.Sqrt(p*(1-p)/n+z2/(4*n*n))
	lower, upper = math.Max(0, center-half), math.Min(1, center+half)
	// Rounding can leave the exact ends a hair off; pin them.
	if bad == 0 {
		lower = 0
	}
	if bad == total {
		upper = 1
	}
	return lower, upper
}

// DiffInterval is Newcombe's hybrid score interval for p1 - p2, built from
// the two Wilson intervals: well behaved for small counts and for rates at
// 0, unlike the plain two-proportion z statistic.
func DiffInterval(bad1, total1, bad2, total2 int64, z float64) (lower, upper float64) {
	p1, p2 := rate(bad1, total1), rate(bad2, total2)
	l1, u1 := Wilson(bad1, total1, z)
	l2, u2 := Wilson(bad2, total2, z)
	d := p1 - p2
	lower = d - math.Sqrt((p1-l1)*(p1-l1)+(u2-p2)*(u2-p2))
	upper = d + math.Sqrt((u1-p1)*(u1-p1)+(p2-l2)*(p2-l2))
	return lower, upper
}

func rate(bad, total int64) float64 {
	if total <= 0 {
		return 0
	}
	return float64(bad) / float64(total)
}

// Judgement is the verdict of the absolute check for one proportion.
type Judgement int

const (
	// Within: the upper bound is within the limit.
	Within Judgement = iota
	// Beyond: the lower bound already breaks the limit.
	Beyond
	// Unsure: the interval straddles the limit.
	Unsure
)

// JudgeMax judges a proportion whose limit is a maximum (error share,
// share slower than a latency threshold): Beyond when even the lower bound
// exceeds the limit, Within when even the upper bound does not.
func JudgeMax(lower, upper, limit float64) Judgement {
	switch {
	case lower > limit:
		return Beyond
	case upper <= limit:
		return Within
	}
	return Unsure
}
