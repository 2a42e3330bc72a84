package slacknotify

import (
	"strings"
	"testing"
)

// FuzzParseFields: any fields input either gives fields whose keys are
// non-empty and whose values keep every byte of the lines after the first
// "=" (continuation lines included), or is refused naming the input.
func FuzzParseFields(f *testing.F) {
	for _, s := range []string{"version=1.2.3", "a=b\nc=d=e", "reason=line one\nline two", "nokey", "=v", " k = v ", "", "k=\n\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		lines := strings.Split(s, "\n")
		fs, err := parseFields(lines)
		if err != nil {
			if !strings.Contains(err.Error(), `input "fields"`) {
				t.Fatalf("parseFields(%q): %q does not name the input", s, err)
			}
			return
		}
		for _, fl := range fs {
			if fl.Key == "" || strings.Contains(fl.Key, "=") {
				t.Fatalf("parseFields(%q): field key %q", s, fl.Key)
			}
		}
		// Every continuation line survives in some value.
		for _, line := range lines {
			if k, _, ok := strings.Cut(line, "="); ok && strings.TrimSpace(k) != "" {
				continue
			}
			found := false
			for _, fl := range fs {
				found = found || strings.Contains(fl.Value, line)
			}
			if !found {
				t.Fatalf("parseFields(%q) = %+v: line %q was dropped", s, fs, line)
			}
		}
	})
}
