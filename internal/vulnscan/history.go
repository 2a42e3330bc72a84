package vulnscan

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"github.com/spf13/viper"
	"github.com/zricethezav/gitleaks/v8/cmd/scm"
	"github.com/zricethezav/gitleaks/v8/config"
	"github.com/zricethezav/gitleaks/v8/detect"
	"github.com/zricethezav/gitleaks/v8/logging"
	"github.com/zricethezav/gitleaks/v8/report"
	"github.com/zricethezav/gitleaks/v8/sources"

	"github.com/gantry-ci/gantry/internal/ghaction"
)

// gitleaksModule is the module whose version the history scan reports.
const gitleaksModule = "github.com/zricethezav/gitleaks/v8"

// GitleaksRules is the rule file of the history scan when the repository
// has no .gitleaks.toml: gitleaks' default rules and Gantry's own.
//
//go:embed gitleaks-gantry.toml
var GitleaksRules string

// HistoryLogOpts are the git log options gantry-scan gives gitleaks before
// the range: every commit of the range with its full history, the added
// side of each change (deleted files have nothing to add).
const HistoryLogOpts = "--full-history --diff-filter=tuxdb"

// HistoryInfo says what a history scan covered.
type HistoryInfo struct {
	// Repository is the top directory of the Git repository scanned.
	Repository string `json:"repository"`
	// Range is what git log was given: "HEAD" (every commit reachable from
	// HEAD), "<sha>..HEAD" (the commits since history-since) or
	// "--since=<time> HEAD".
	Range string `json:"range"`
	// Since is history-since as given, when set.
	Since   string `json:"since,omitempty"`
	Commits int    `json:"commits"`
	// Rules is the rule file: "built-in" (gitleaks' defaults and Gantry's)
	// or the repository's .gitleaks.toml.
	Rules     string `json:"rules"`
	RuleCount int    `json:"ruleCount"`
	Gitleaks  string `json:"gitleaks"`
}

// historySeverity is a history finding's severity: a credential committed
// to the history is in every clone and must be rotated, so CRITICAL; the
// generic-api-key rule, an entropy heuristic with more false positives,
// HIGH.
func historySeverity(rule string) string {
	if strings.Contains(rule, "generic") {
		return "HIGH"
	}
	return "CRITICAL"
}

const historyResolution = "Rotate the secret (revoke it and issue a new one): it is in every clone of the history, so deleting the file or rewriting the branch does not take it back. Then, if you want it gone from the history, rewrite it (git filter-repo) and force-push."

var nullCommit = regexp.MustCompile(`^0+$`)

// historyRange turns history-since into git log arguments, after checking
// that the repository has what they need.
func historyRange(ctx context.Context, repo, since string) (logRange string, err error) {
	shallow, err := gitOut(ctx, repo, "rev-parse", "--is-shallow-repository")
	if err != nil {
		return "", err
	}
	isShallow := shallow == "true"
	fullNeeded := fmt.Errorf(`input "scanners": history needs the commits but %s is a shallow clone: check it out with actions/checkout's fetch-depth: 0 (or run git fetch --unshallow)`, repo)
	since = strings.TrimSpace(since)
	switch {
	case since == "" || (len(since) >= 40 && nullCommit.MatchString(since)):
		if isShallow {
			return "", fullNeeded
		}
		return "HEAD", nil
	case strings.HasPrefix(since, "-"):
		return "", fmt.Errorf(`input "history-since": %q is neither a commit nor a date: give a commit SHA, a ref (e.g. origin/main), a date (2025-01-31) or a time (2025-01-31T12:00:00Z)`, since)
	}
	if t, ok := parseSinceTime(since); ok {
		if isShallow {
			return "", fullNeeded
		}
		return "--since=" + t.UTC().Format(time.RFC3339) + " HEAD", nil
	}
	sha, err := gitOut(ctx, repo, "rev-parse", "--verify", "--quiet", "--end-of-options", since+"^{commit}")
	if err != nil || sha == "" {
		hint := ""
		if isShallow {
			hint = " (the clone is shallow: check out with fetch-depth: 0)"
		}
		return "", fmt.Errorf(`input "history-since": %q is not a commit of %s%s: give a commit SHA or ref that is in the clone, a date (2025-01-31), or leave it empty to scan every commit`, since, repo, hint)
	}
	if isShallow {
		if _, err := gitOut(ctx, repo, "merge-base", "--is-ancestor", sha, "HEAD"); err != nil {
			return "", fmt.Errorf(`input "history-since": %s is not an ancestor of HEAD in the shallow clone %s, so the commits between are not all there: check out with fetch-depth: 0`, since, repo)
		}
	}
	return sha + "..HEAD", nil
}

func parseSinceTime(s string) (time.Time, bool) {
	for _, layout := range []string{time.DateOnly, time.RFC3339, "2006-01-02T15:04:05"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

// gitOut runs git in dir and returns its trimmed output.
func gitOut(ctx context.Context, dir string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "git", append([]string{"-C", dir}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		if errors.Is(err, exec.ErrNotFound) {
			return "", errors.New(`the history scanner runs git, which is not on PATH: install git`)
		}
		return "", fmt.Errorf("git %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return strings.TrimSpace(string(out)), nil
}

// gitleaksMu serialises what gitleaks keeps process-wide: its config
// loading goes through viper's global instance.
var gitleaksMu sync.Mutex

// gitleaksLog takes gitleaks' log (a process-wide zerolog logger): only
// warnings and errors, kept for an error message. Lower levels are dropped
// because gitleaks' debug lines carry the secrets it found.
var gitleaksLog = &logTail{}

type logTail struct {
	mu    sync.Mutex
	lines []string // the last 20
	total int      // lines written ever
}

func (l *logTail) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var ev struct {
		Message string `json:"message"`
	}
	line := strings.TrimSpace(string(p))
	if json.Unmarshal(p, &ev) == nil && ev.Message != "" {
		line = ev.Message
	}
	l.lines = append(l.lines, line)
	l.total++
	if len(l.lines) > 20 {
		l.lines = l.lines[len(l.lines)-20:]
	}
	return len(p), nil
}

// mark is where the log is now, for gitLines.
func (l *logTail) mark() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.total
}

// gitLines returns the git error lines gitleaks logged since mark (of
// the last 20 lines): not an earlier scan's.
func (l *logTail) gitLines(mark int) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, s := range l.lines[max(0, len(l.lines)-(l.total-mark)):] {
		if g, ok := strings.CutPrefix(s, "[git] "); ok {
			out = append(out, g)
		}
	}
	return out
}

var quietGitleaks = sync.OnceFunc(func() {
	logging.Logger = zerolog.New(gitleaksLog).Level(zerolog.WarnLevel)
})

// loadGitleaksConfig reads a gitleaks rule file (TOML). path names it in
// errors; empty means the built-in rules.
func loadGitleaksConfig(toml, path string) (cfg config.Config, err error) {
	gitleaksMu.Lock()
	defer gitleaksMu.Unlock()
	name := path
	if name == "" {
		name = "the built-in history rules"
	}
	// Translate compiles the rules' regular expressions with MustCompile.
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%s: %v", name, p)
		}
	}()
	v := viper.New()
	v.SetConfigType("toml")
	if err := v.ReadConfig(strings.NewReader(toml)); err != nil {
		return config.Config{}, fmt.Errorf("%s is not a gitleaks rule file: %w", name, err)
	}
	var vc config.ViperConfig
	if err := v.Unmarshal(&vc); err != nil {
		return config.Config{}, fmt.Errorf("%s is not a gitleaks rule file: %w", name, err)
	}
	if vc.Extend.Path != "" {
		return config.Config{}, fmt.Errorf("%s: [extend] path is not supported by gantry-scan: extend the default rules (useDefault = true) or copy the rules in", name)
	}
	if cfg, err = vc.Translate(); err != nil {
		return config.Config{}, fmt.Errorf("%s: %w", name, err)
	}
	cfg.Path = path
	return cfg, nil
}

var builtinGitleaks = sync.OnceValues(func() (config.Config, error) {
	return loadGitleaksConfig(GitleaksRules, "")
})

func gitleaksVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == gitleaksModule {
				if d.Replace != nil {
					d = d.Replace
				}
				return strings.TrimPrefix(d.Version, "v")
			}
		}
	}
	// Test binaries carry no dependency list; this is the version go.mod
	// pins (TestHistorySameAsGitleaksCLI compares it with the CLI's).
	return "8.30.1"
}

// scanHistory scans the commits of t.Dir's repository that history-since
// selects for secrets, with gitleaks. Findings carry the rule, commit,
// author date, file and line, never the secret.
func scanHistory(ctx context.Context, t *Target, since string, log ghaction.Logger) ([]Finding, error) {
	quietGitleaks()
	repo, err := gitOut(ctx, t.Dir, "rev-parse", "--show-toplevel")
	if err != nil {
		return nil, fmt.Errorf(`input "path": %s is not in a Git repository, so it has no history to scan (%v): run in a checkout, or drop history from scanners`, t.Dir, err)
	}
	if _, err := gitOut(ctx, repo, "rev-parse", "--verify", "--quiet", "HEAD^{commit}"); err != nil {
		return nil, fmt.Errorf(`input "path": the repository %s has no commit yet: there is no history to scan`, repo)
	}
	logRange, err := historyRange(ctx, repo, since)
	if err != nil {
		return nil, err
	}
	info := &HistoryInfo{Repository: repo, Range: logRange, Since: since, Rules: "built-in", Gitleaks: gitleaksVersion()}
	t.History = info
	count, err := gitOut(ctx, repo, append([]string{"rev-list", "--count", "--full-history"}, strings.Fields(logRange)...)...)
	if err != nil {
		return nil, err
	}
	info.Commits, _ = strconv.Atoi(count)

	cfg, err := historyRules(t.Dir, repo, info)
	if err != nil {
		return nil, err
	}
	info.RuleCount = len(cfg.Rules)
	log.Infof("history of %s: %d commit(s) in %s, gitleaks %s with %s rules (%d)", repo, info.Commits, logRange, info.Gitleaks, info.Rules, info.RuleCount)

	logMark := gitleaksLog.mark()
	d := detect.NewDetectorContext(ctx, cfg)
	d.Redact = 100
	d.MaxDecodeDepth = 5 // as the gitleaks CLI
	cmd, err := sources.NewGitLogCmdContext(ctx, repo, HistoryLogOpts+" "+logRange)
	if err != nil {
		return nil, fmt.Errorf("starting git log in %s: %w", repo, err)
	}
	found, err := d.DetectSource(ctx, &sources.Git{
		Cmd: cmd, Config: &d.Config, Remote: &sources.RemoteInfo{Platform: scm.NoPlatform}, Sema: d.Sema,
	})
	if err != nil {
		if lines := gitleaksLog.gitLines(logMark); len(lines) > 0 {
			err = fmt.Errorf("%w: %s", err, strings.Join(lines, "; "))
		}
		return nil, fmt.Errorf("scanning the history of %s: %w", repo, err)
	}
	out := make([]Finding, 0, len(found))
	for _, f := range found {
		out = append(out, historyFinding(f))
	}
	return out, nil
}

// historyRules are the repository's .gitleaks.toml (in the scanned
// directory, else at the top of the repository), as the gitleaks CLI would
// read it, else the built-in rules.
func historyRules(dir, repo string, info *HistoryInfo) (config.Config, error) {
	for _, d := range uniqueDirs(dir, repo) {
		p := filepath.Join(d, ".gitleaks.toml")
		raw, err := os.ReadFile(p)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return config.Config{}, err
		}
		cfg, err := loadGitleaksConfig(string(raw), p)
		if err != nil {
			return config.Config{}, fmt.Errorf(`the history scan's rules: %w (fix it, or remove it to use gantry-scan's built-in rules)`, err)
		}
		info.Rules = p
		return cfg, nil
	}
	return builtinGitleaks()
}

// historyFinding keeps what locates a gitleaks finding; the secret, the
// match, the line and the commit message are left behind.
func historyFinding(f report.Finding) Finding {
	return Finding{
		Kind: KindSecret, ID: f.RuleID, Severity: historySeverity(f.RuleID),
		Title:  strings.TrimSpace(f.Description),
		Source: "commit " + shortSHA(f.Commit),
		File:   f.File, Line: f.StartLine,
		Commit: f.Commit, Date: f.Date, Author: f.Author,
		Fingerprint: f.Fingerprint,
		Resolution:  historyResolution,
	}
}

func shortSHA(s string) string {
	if len(s) > 12 {
		return s[:12]
	}
	return s
}

func uniqueDirs(dirs ...string) []string {
	var out []string
	seen := map[string]bool{}
	for _, d := range dirs {
		if abs, err := filepath.Abs(d); err == nil && !seen[abs] {
			seen[abs] = true
			out = append(out, abs)
		}
	}
	return out
}

// checkFingerprint checks the shape of a history finding's fingerprint.
func checkFingerprint(fp string) error {
	parts := strings.Split(fp, ":")
	if len(parts) != 3 && len(parts) != 4 {
		return fmt.Errorf("%q is not a fingerprint: write commit:file:rule:line (from the JSON report's fingerprint) or file:rule:line for every commit", fp)
	}
	if _, err := strconv.Atoi(parts[len(parts)-1]); err != nil {
		return fmt.Errorf("%q is not a fingerprint: it must end with :line (a number)", fp)
	}
	return nil
}
