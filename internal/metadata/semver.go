package metadata

import (
	"regexp"
	"strconv"
)

// Semver is a parsed semantic version.
type Semver struct {
	Major, Minor, Patch int
	Pre, Build          string
}

var semverRE = regexp.MustCompile(`^v?(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$`)

// ParseSemver parses "1.2.3" or "v1.2.3-rc.1+build.5".
func ParseSemver(s string) (Semver, bool) {
	m := semverRE.FindStringSubmatch(s)
	if m == nil {
		return Semver{}, false
	}
	atoi := func(x string) int { n, _ := strconv.Atoi(x); return n }
	return Semver{Major: atoi(m[1]), Minor: atoi(m[2]), Patch: atoi(m[3]), Pre: m[4], Build: m[5]}, true
}

// String is the version without a leading v and without build metadata
// ('+' is not valid in a tag).
func (v Semver) String() string {
	s := strconv.Itoa(v.Major) + "." + strconv.Itoa(v.Minor) + "." + strconv.Itoa(v.Patch)
	if v.Pre != "" {
		s += "-" + v.Pre
	}
	return s
}
