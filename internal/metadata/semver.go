package metadata

import (
	"strconv"
	"strings"

	"github.com/Masterminds/semver/v3"
)

// Semver is a parsed semantic version.
type Semver struct {
	Major, Minor, Patch int
	Pre, Build          string
}

// ParseSemver parses "1.2.3" or "v1.2.3-rc.1+build.5": a full SemVer 2.0
// version (Masterminds/semver's strict parser), with an optional leading v
// as tags have it.
func ParseSemver(s string) (Semver, bool) {
	v, err := semver.StrictNewVersion(strings.TrimPrefix(s, "v"))
	if err != nil {
		return Semver{}, false
	}
	return Semver{Major: int(v.Major()), Minor: int(v.Minor()), Patch: int(v.Patch()), Pre: v.Prerelease(), Build: v.Metadata()}, true
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
