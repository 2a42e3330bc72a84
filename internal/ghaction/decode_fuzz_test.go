package ghaction_test

import (
	"strings"
	"testing"
)

// FuzzDecode: any value of any input kind — durations (timeout, window,
// bake, max-hold, …), booleans, whole numbers, comma, line and argv lists
// (platforms, labels, env, build-args, …), secrets — decodes or is
// refused with an error that names the input; a secret's value is never
// in the error, and a decoded duration is never negative. Never a panic.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{"", "15m", "-1s", "1e9h", "90", "true", "Yes", "nope", "4", "-3", "99999999999999999999",
		"linux/amd64,linux/arm64", "a\nb\n\n c ", "--flag 'quoted arg' \"x y\"", "'unterminated", "\\", "s3cr3t\nline2"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, input := range []string{"timeout", "verbose", "jobs", "platforms", "layers", "cmd", "registry-password"} {
			env, _ := newEnv(map[string]string{"INPUT_NAME": "app", "INPUT_" + strings.ToUpper(input): s})
			var in testInputs
			err := env.Decode(&in)
			if err != nil {
				if !strings.Contains(err.Error(), `input "`+input+`"`) {
					t.Fatalf("input %s = %q: %q does not name the input", input, s, err)
				}
				if input == "registry-password" && strings.TrimSpace(s) != "" && strings.Contains(err.Error(), strings.TrimSpace(s)) {
					t.Fatalf("input %s = %q: the error shows the secret: %q", input, s, err)
				}
				continue
			}
			if in.Timeout < 0 {
				t.Fatalf("timeout %q decoded to %v", s, in.Timeout)
			}
		}
	})
}
