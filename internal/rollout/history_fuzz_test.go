package rollout

import (
	"strconv"
	"strings"
	"testing"
)

// FuzzParseRollbackTarget: rollback-to either names a target that can be
// looked up (previous, a positive revision, a sha256 digest of 64 lower-case
// hex digits) or is refused naming the input. Never a panic.
func FuzzParseRollbackTarget(f *testing.F) {
	for _, s := range []string{"", "previous", " previous ", "revision:3", "revision:0", "revision:-1", "revision:x",
		"digest:sha256:" + strings.Repeat("a", 64), "digest:sha256:" + strings.Repeat("z", 64), "digest:sha512:abc", "latest"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		rt, err := ParseRollbackTarget(s)
		if err != nil {
			if !strings.Contains(err.Error(), `input "rollback-to"`) {
				t.Fatalf("ParseRollbackTarget(%q): %q does not name the input", s, err)
			}
			return
		}
		switch rt.Kind {
		case "previous":
		case "revision":
			if n, err := strconv.ParseInt(rt.Value, 10, 64); err != nil || n < 1 {
				t.Fatalf("ParseRollbackTarget(%q) = %+v: not a positive revision", s, rt)
			}
		case "digest":
			hex := strings.TrimPrefix(rt.Value, "sha256:")
			if len(hex) != 64 || strings.Trim(hex, "0123456789abcdef") != "" {
				t.Fatalf("ParseRollbackTarget(%q) = %+v: not a sha256 digest", s, rt)
			}
		default:
			t.Fatalf("ParseRollbackTarget(%q) = %+v: unknown kind", s, rt)
		}
	})
}
