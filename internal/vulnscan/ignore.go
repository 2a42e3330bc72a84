package vulnscan

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path"
	"strings"
	"time"

	"sigs.k8s.io/yaml"
)

// IgnoreEntry is one entry of the ignore file:
//
//	ignore:
//	  - id: CVE-2021-23337          # or rule: KSV017 (same meaning)
//	    paths: [package-lock.json]  # optional: only findings in these files (globs)
//	    reason: not reachable from our code (#123)
//	    expires: 2026-12-31         # optional: stops ignoring after this day (UTC)
//	  - fingerprint: 3f2a…:config/old.env:aws-access-token:4  # one history finding
//	    reason: rotated on 2026-11-02 (INC-7)
type IgnoreEntry struct {
	ID    string   `json:"id,omitempty"`
	Rule  string   `json:"rule,omitempty"`
	Paths []string `json:"paths,omitempty"`
	// Fingerprint names one history finding (commit:file:rule:line), or
	// one place in every commit (file:rule:line).
	Fingerprint string `json:"fingerprint,omitempty"`
	Reason      string `json:"reason,omitempty"`
	Expires     string `json:"expires,omitempty"`

	// File is where the entry came from; Line its line in a .trivyignore.
	File string `json:"file"`
	Line int    `json:"line,omitempty"`

	expires time.Time // end of the expiry day, zero when none
}

// Key is the entry's ID, rule or fingerprint.
func (e IgnoreEntry) Key() string {
	switch {
	case e.ID != "":
		return e.ID
	case e.Rule != "":
		return e.Rule
	}
	return e.Fingerprint
}

// Expired reports whether the entry no longer ignores anything at now.
func (e IgnoreEntry) Expired(now time.Time) bool {
	return !e.expires.IsZero() && !now.Before(e.expires)
}

type ignoreFile struct {
	Ignore []IgnoreEntry `json:"ignore"`
}

// LoadIgnoreFile parses a YAML ignore file. input names the action input the
// path came from, for error messages.
func LoadIgnoreFile(file string) ([]IgnoreEntry, error) {
	raw, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf(`input "ignore-file": %w: point it at a YAML file (see docs/scan.md) or leave it empty`, err)
	}
	var f ignoreFile
	if err := yaml.UnmarshalStrict(raw, &f); err != nil {
		return nil, fmt.Errorf(`input "ignore-file": %s is not a valid ignore file (want "ignore:" with entries of id or rule, reason, optional paths and expires: YYYY-MM-DD): %w`, file, err)
	}
	var errs []error
	for i := range f.Ignore {
		e := &f.Ignore[i]
		e.File = file
		where := fmt.Sprintf(`input "ignore-file": %s entry %d`, file, i+1)
		switch set := btoi(e.ID != "") + btoi(e.Rule != "") + btoi(e.Fingerprint != ""); {
		case set == 0:
			errs = append(errs, fmt.Errorf("%s: set id (a CVE/GHSA ID or license), rule (a check or secret rule ID) or fingerprint (a history finding's)", where))
		case set > 1:
			errs = append(errs, fmt.Errorf("%s (%s): set one of id, rule and fingerprint", where, e.Key()))
		case e.Fingerprint != "":
			if err := checkFingerprint(e.Fingerprint); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", where, err))
			}
			if len(e.Paths) > 0 {
				errs = append(errs, fmt.Errorf("%s (%s): paths do not go with fingerprint, which names the file already", where, e.Key()))
			}
		}
		if strings.TrimSpace(e.Reason) == "" {
			errs = append(errs, fmt.Errorf("%s (%s): reason is required: say why it is safe to ignore, so a reviewer can judge it", where, e.Key()))
		}
		if e.Expires != "" {
			t, err := time.Parse(time.DateOnly, e.Expires)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s (%s): expires %q is not a date: write YYYY-MM-DD", where, e.Key(), e.Expires))
			} else {
				e.expires = t.AddDate(0, 0, 1) // the whole day still ignores
			}
		}
		for _, p := range e.Paths {
			if _, err := path.Match(p, ""); err != nil {
				errs = append(errs, fmt.Errorf("%s (%s): path %q is not a valid glob", where, e.Key(), p))
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return f.Ignore, nil
}

// LoadTrivyIgnore parses a .trivyignore: one ID per line, optionally
// followed by exp:YYYY-MM-DD; # starts a comment. A missing file is no error.
func LoadTrivyIgnore(file string) ([]IgnoreEntry, error) {
	return loadIgnoreLines(file, "one ID per line, optionally followed by exp:YYYY-MM-DD", func(line string, n int) (*IgnoreEntry, error) {
		if i := strings.Index(line, "#"); i >= 0 {
			line = strings.TrimSpace(line[:i])
		}
		fields := strings.Fields(line)
		if len(fields) == 0 {
			return nil, nil
		}
		e := IgnoreEntry{ID: fields[0]}
		for _, f := range fields[1:] {
			if d, ok := strings.CutPrefix(f, "exp:"); ok {
				t, err := time.Parse(time.DateOnly, d)
				if err != nil {
					return nil, fmt.Errorf("exp:%s is not a date: write exp:YYYY-MM-DD", d)
				}
				e.Expires, e.expires = d, t.AddDate(0, 0, 1)
			}
		}
		return &e, nil
	})
}

// LoadGitleaksIgnore reads a .gitleaksignore: one fingerprint per line
// (commit:file:rule:line, or file:rule:line for every commit); a line
// starting with # is a comment. A missing file is no error.
func LoadGitleaksIgnore(file string) ([]IgnoreEntry, error) {
	return loadIgnoreLines(file, "one fingerprint per line", func(line string, _ int) (*IgnoreEntry, error) {
		if line == "" || strings.HasPrefix(line, "#") {
			return nil, nil
		}
		if err := checkFingerprint(line); err != nil {
			return nil, err
		}
		return &IgnoreEntry{Fingerprint: line}, nil
	})
}

// loadIgnoreLines reads a line-per-entry ignore file: parse gets each
// trimmed line and gives an entry, nothing (a blank or comment line) or an
// error, which is reported with the file and the line. Entries get the
// file, the line and "listed in <file>" as reason. A missing file is no
// error.
func loadIgnoreLines(file, format string, parse func(line string, n int) (*IgnoreEntry, error)) ([]IgnoreEntry, error) {
	raw, err := os.ReadFile(file)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []IgnoreEntry
	sc := bufio.NewScanner(bytes.NewReader(raw))
	for n := 1; sc.Scan(); n++ {
		e, err := parse(strings.TrimSpace(sc.Text()), n)
		if err != nil {
			return nil, fmt.Errorf("%s line %d: %w", file, n, err)
		}
		if e != nil {
			e.File, e.Line, e.Reason = file, n, "listed in "+path.Base(file)
			out = append(out, *e)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w: %s", file, err, format)
	}
	return out, nil
}

// applyIgnores marks findings matched by a live entry and returns the
// entries that expired (and so no longer ignore anything) but would have
// matched, so the summary can say that they stopped working.
func applyIgnores(targets []TargetResult, entries []IgnoreEntry, now time.Time) (expired []ExpiredIgnore) {
	seen := map[int]int{} // entry index -> index in expired
	for ti := range targets {
		for fi := range targets[ti].Findings {
			f := &targets[ti].Findings[fi]
			for ei, e := range entries {
				if !e.matches(*f) {
					continue
				}
				if e.Expired(now) {
					if k, ok := seen[ei]; ok {
						expired[k].Findings++
					} else {
						seen[ei] = len(expired)
						expired = append(expired, ExpiredIgnore{Entry: e, Findings: 1})
					}
					continue
				}
				f.Ignored = &Ignored{Entry: e.Key(), Reason: e.Reason, Expires: e.Expires, File: e.File}
				break
			}
		}
	}
	return expired
}

// ExpiredIgnore is an ignore entry past its date that matched findings.
type ExpiredIgnore struct {
	Entry    IgnoreEntry `json:"entry"`
	Findings int         `json:"findings"`
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

func (e IgnoreEntry) matches(f Finding) bool {
	if e.Fingerprint != "" {
		return f.Fingerprint != "" && (e.Fingerprint == f.Fingerprint ||
			e.Fingerprint == fmt.Sprintf("%s:%s:%d", f.File, f.ID, f.Line))
	}
	if !strings.EqualFold(e.Key(), f.ID) {
		return false
	}
	if len(e.Paths) == 0 {
		return true
	}
	for _, p := range e.Paths {
		for _, cand := range []string{f.File, f.Source} {
			if cand == "" {
				continue
			}
			cand = strings.TrimPrefix(cand, "/")
			p := strings.TrimPrefix(p, "/")
			if ok, _ := path.Match(p, cand); ok || cand == p || strings.HasPrefix(cand, strings.TrimSuffix(p, "/")+"/") {
				return true
			}
		}
	}
	return false
}
