package vulnscan

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// FuzzIgnoreFiles: any bytes as the ignore-file (YAML), as a .trivyignore
// and as a .gitleaksignore either load into entries that can be applied —
// each with an id, a rule or a fingerprint, a reason, and an expiry day
// when it names one — or are refused with an error naming the input
// (ignore-file) or the file and line. Never a panic; applying what loaded
// never panics.
func FuzzIgnoreFiles(f *testing.F) {
	for _, s := range []string{
		"ignore:\n  - id: CVE-2021-23337\n    reason: not reachable (#123)\n    expires: 2026-12-31\n",
		"ignore:\n  - rule: KSV017\n    paths: [deploy/*.yaml]\n    reason: the pod needs it\n",
		"ignore:\n  - id: CVE-1\n    rule: KSV1\n    reason: both\n",
		"ignore:\n  - id: CVE-1\n    expires: 31/12/2026\n",
		"ignore:\n  - id: CVE-1\n    reason: r\n    paths: ['[']\n",
		"ignore: {}\n", "nope: 1\n", "- a\n- b\n", "",
		"CVE-2021-23337\nCVE-2022-1 exp:2026-01-31 # until the fix\n# comment only\n",
		"CVE-1 exp:tomorrow\n", strings.Repeat("x", 70000) + "\n",
		"ignore:\n  - fingerprint: 3f2a:config/old.env:aws-access-token:4\n    reason: rotated\n    expires: 2026-01-31\n",
		"ignore:\n  - fingerprint: config/old.env:aws-access-token\n    reason: r\n",
		"3f2a9c:config/old.env:aws-access-token:4\nconfig/a.env:github-pat:2\n# c\nbad\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
		target := []TargetResult{{Findings: []Finding{
			{ID: "CVE-2021-23337", File: "package-lock.json"}, {ID: "KSV017", File: "deploy/api.yaml"},
			{ID: "aws-access-token", File: "config/old.env", Line: 4, Commit: "3f2a", Fingerprint: "3f2a:config/old.env:aws-access-token:4"},
		}}}

		yml := filepath.Join(dir, "ignore.yaml")
		if err := os.WriteFile(yml, data, 0o644); err != nil {
			t.Fatal(err)
		}
		entries, err := LoadIgnoreFile(yml)
		if err != nil {
			if !strings.Contains(err.Error(), `input "ignore-file"`) {
				t.Fatalf("LoadIgnoreFile(%q): %q does not name the input", data, err)
			}
		} else {
			for _, e := range entries {
				if e.Key() == "" || strings.TrimSpace(e.Reason) == "" || (e.Expires != "" && e.expires.IsZero()) {
					t.Fatalf("LoadIgnoreFile(%q) gave an entry it should refuse: %+v", data, e)
				}
			}
			applyIgnores(target, entries, now)
		}

		gi := filepath.Join(dir, ".gitleaksignore")
		if err := os.WriteFile(gi, data, 0o644); err != nil {
			t.Fatal(err)
		}
		if entries, err := LoadGitleaksIgnore(gi); err != nil {
			if !strings.Contains(err.Error(), gi) {
				t.Fatalf("LoadGitleaksIgnore(%q): %q does not name the file", data, err)
			}
		} else {
			for _, e := range entries {
				if checkFingerprint(e.Fingerprint) != nil || e.Line < 1 || e.Reason == "" {
					t.Fatalf("LoadGitleaksIgnore(%q) gave a broken entry: %+v", data, e)
				}
			}
			applyIgnores(target, entries, now)
		}

		ti := filepath.Join(dir, ".trivyignore")
		if err := os.WriteFile(ti, data, 0o644); err != nil {
			t.Fatal(err)
		}
		entries, err = LoadTrivyIgnore(ti)
		if err != nil {
			if !strings.Contains(err.Error(), ti) {
				t.Fatalf("LoadTrivyIgnore(%q): %q does not name the file", data, err)
			}
			return
		}
		for _, e := range entries {
			if e.ID == "" || strings.ContainsAny(e.ID, " \t\n#") || e.Line < 1 || (e.Expires != "" && e.expires.IsZero()) {
				t.Fatalf("LoadTrivyIgnore(%q) gave a broken entry: %+v", data, e)
			}
		}
		applyIgnores(target, entries, now)
	})
}
