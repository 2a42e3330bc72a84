package vulnscan

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/gantry-ci/gantry/internal/ghaction"
	"github.com/gantry-ci/gantry/internal/registry"
	"github.com/gantry-ci/gantry/internal/release"
)

// ErrGate is returned (wrapped) when findings failed the gate. Run still
// returns complete Outputs with it, so the caller writes outputs, files
// and the summary before failing the step.
var ErrGate = errors.New("findings failed the severity gate")

// Run scans the image and/or path, applies the ignore file and the gate,
// and writes the SARIF, JSON and attestation files.
func Run(ctx context.Context, in Inputs) (Outputs, error) {
	if err := in.Validate(); err != nil {
		return Outputs{}, err
	}
	log := in.Log
	if log == nil {
		log = ghaction.Discard{}
	}
	if in.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, in.Timeout)
		defer cancel()
	}
	started := in.now().UTC()

	entries, err := loadIgnores(in, log)
	if err != nil {
		return Outputs{}, err
	}
	// A broken release record fails before the scan, not after it.
	if err := release.Check(in.ReleaseFile); err != nil {
		return Outputs{}, err
	}

	conn := registry.Conn{
		Username: in.RegistryUsername, Password: in.RegistryPassword, Insecure: in.InsecureRegistries,
		Keychain: in.Keychain, Transport: in.Transport, Backoff: in.Backoff, UserAgent: "gantry-scan",
	}

	var (
		targets []Target
		image   string // repo@sha256:… as resolved
	)
	trivyScanners := in.trivyScanners()
	if strings.TrimSpace(in.Image) != "" {
		end := log.Group("Resolve the image")
		image, targets, err = imageTargets(ctx, &in, conn, log)
		end()
		if err != nil {
			return Outputs{}, err
		}
	}
	if p := strings.TrimSpace(in.Path); p != "" {
		abs, err := filepath.Abs(p)
		if err != nil {
			return Outputs{}, err
		}
		if fi, err := os.Stat(abs); err != nil || !fi.IsDir() {
			return Outputs{}, fmt.Errorf(`input "path": %s is not a directory: set it to the repository directory to scan, e.g. "."`, p)
		}
		clean := filepath.ToSlash(filepath.Clean(p))
		if len(trivyScanners) > 0 {
			targets = append(targets, Target{Kind: "path", Name: "path " + p, Category: category("gantry-scan", "path", clean), Dir: abs})
		}
		if in.enabled(ScanHistory) {
			targets = append(targets, Target{Kind: "history", Name: "history " + p, Category: category("gantry-scan", "history", clean), Dir: abs})
		}
	}

	var dbInfo *DBInfo
	if in.enabled(ScanVuln) {
		end := log.Group("Vulnerability DB")
		d, err := ensureDB(ctx, &in, conn, log)
		end()
		if err != nil {
			return Outputs{}, err
		}
		dbInfo = &d
	}

	rep := Report{
		Schema:   ReportSchema,
		Image:    image,
		DB:       dbInfo,
		Started:  started,
		Scanners: in.Scanners,
		Gate:     Gate{Severities: in.Severity},
	}
	var sc Scanner
	if len(trivyScanners) > 0 {
		newScanner := in.NewScanner
		if newScanner == nil {
			newScanner = func(cfg ScannerConfig) (Scanner, error) { return NewTrivy(ctx, cfg) }
		}
		if sc, err = newScanner(ScannerConfig{CacheDir: in.CacheDir, Scanners: trivyScanners}); err != nil {
			return Outputs{}, err
		}
		defer sc.Close()
		rep.Scanner = Tool{Name: "trivy", Version: sc.Version(), URI: "pkg:golang/github.com/aquasecurity/trivy@v" + sc.Version()}
	}
	if in.enabled(ScanHistory) {
		v := gitleaksVersion()
		rep.HistoryScanner = &Tool{Name: "gitleaks", Version: v, URI: "pkg:golang/" + gitleaksModule + "@v" + v}
		if sc == nil {
			rep.Scanner = *rep.HistoryScanner
		}
	}
	for _, t := range targets {
		end := log.Group("Scan " + t.Name)
		var (
			found []Finding
			err   error
		)
		if t.Kind == "history" {
			log.Infof("scanning %s for secrets", t.Name)
			found, err = scanHistory(ctx, &t, in.HistorySince, log)
		} else {
			log.Infof("scanning %s (%s)", t.Name, strings.Join(trivyScanners, ", "))
			found, err = sc.Scan(ctx, t)
		}
		if err != nil {
			end()
			return Outputs{}, err
		}
		if in.IgnoreUnfixed {
			before := len(found)
			found = slices.DeleteFunc(found, func(f Finding) bool { return f.Kind == KindVulnerability && f.Fixed == "" })
			rep.Unfixed += before - len(found)
		}
		sortFindings(found)
		log.Infof("%s: %d finding(s)", t.Name, len(found))
		end()
		rep.Targets = append(rep.Targets, TargetResult{Target: t, Findings: found})
	}

	rep.Expired = applyIgnores(rep.Targets, entries, in.now())
	for _, e := range rep.Expired {
		log.Warningf("ignore entry %s (%s) expired on %s: it no longer ignores %d finding(s) — %s", e.Entry.Key(), e.Entry.File, e.Entry.Expires, e.Findings, e.Entry.Reason)
	}
	rep.Gate.Verdict = "pass"
	for i := range rep.Targets {
		t := &rep.Targets[i]
		t.Counts = Counts{}
		for j := range t.Findings {
			f := &t.Findings[j]
			t.Counts.add(*f)
			switch {
			case f.Ignored != nil:
				f.Gate = "ignored"
			case slices.Contains(in.Severity, f.Severity):
				f.Gate = "fail"
				rep.Gate.Failed = append(rep.Gate.Failed, GateFinding{Target: t.Name, Finding: *f})
			default:
				f.Gate = "pass"
			}
		}
		rep.Counts.plus(t.Counts)
	}
	if len(rep.Gate.Failed) > 0 {
		rep.Gate.Verdict = "fail"
	}
	rep.Finished = in.now().UTC()

	out := Outputs{
		Verdict: rep.Gate.Verdict, Critical: rep.Counts.Critical, High: rep.Counts.High,
		Medium: rep.Counts.Medium, Low: rep.Counts.Low, Report: rep,
	}
	if out.JSONFile, err = writeJSON(in.JSONFile, rep); err != nil {
		return out, err
	}
	if out.SARIFFile, err = writeJSON(in.SARIFFile, sarifReport(rep)); err != nil {
		return out, err
	}
	if out.AttestationFile, err = writeJSON(in.AttestationFile, predicate(rep, in.Invocation)); err != nil {
		return out, err
	}
	if err := recordRelease(in, rep, log); err != nil {
		return out, err
	}
	log.Infof("verdict: %s (critical %d, high %d, medium %d, low %d, ignored %d)", rep.Gate.Verdict, rep.Counts.Critical, rep.Counts.High, rep.Counts.Medium, rep.Counts.Low, rep.Counts.Ignored)
	if rep.Gate.Verdict == "fail" {
		ids := make([]string, 0, len(rep.Gate.Failed))
		for _, f := range rep.Gate.Failed {
			ids = append(ids, fmt.Sprintf("%s %s (%s)", f.Severity, f.ID, cmp.Or(f.Package, f.Where())))
		}
		return out, fmt.Errorf("%w (%s): %s", ErrGate, strings.Join(in.Severity, ","), strings.Join(ids, "; "))
	}
	return out, nil
}

func loadIgnores(in Inputs, log ghaction.Logger) ([]IgnoreEntry, error) {
	var entries []IgnoreEntry
	if in.IgnoreFile != "" {
		e, err := LoadIgnoreFile(in.IgnoreFile)
		if err != nil {
			return nil, err
		}
		entries = append(entries, e...)
		log.Infof("ignore file %s: %d entries", in.IgnoreFile, len(e))
	}
	// .trivyignore, for repositories moving from trivy-action, and with
	// history scanning .gitleaksignore, for those moving from gitleaks: in
	// the scanned path, else the working directory.
	type ignoreSource struct {
		name string
		load func(string) ([]IgnoreEntry, error)
	}
	kinds := []ignoreSource{{".trivyignore", LoadTrivyIgnore}}
	if in.enabled(ScanHistory) {
		kinds = append(kinds, ignoreSource{".gitleaksignore", LoadGitleaksIgnore})
	}
	for _, k := range kinds {
		candidates := []string{k.name}
		if in.Path != "" {
			candidates = append([]string{filepath.Join(in.Path, k.name)}, candidates...)
		}
		seen := map[string]bool{}
		for _, c := range candidates {
			abs, _ := filepath.Abs(c)
			if seen[abs] {
				continue
			}
			seen[abs] = true
			e, err := k.load(c)
			if err != nil {
				return nil, err
			}
			if len(e) > 0 {
				log.Infof("%s: %d entries", c, len(e))
			}
			entries = append(entries, e...)
		}
	}
	return entries, nil
}

func sortFindings(fs []Finding) {
	slices.SortStableFunc(fs, func(a, b Finding) int {
		return cmp.Or(
			cmp.Compare(severityRank(a.Severity), severityRank(b.Severity)),
			cmp.Compare(a.Kind, b.Kind),
			cmp.Compare(a.ID, b.ID),
			cmp.Compare(a.Package, b.Package),
			cmp.Compare(a.Where(), b.Where()),
		)
	})
}

// imageTargets resolves the image once to a digest and lists the platforms
// to scan: every platform of an index (attestation manifests aside), or the
// ones asked for.
func imageTargets(ctx context.Context, in *Inputs, conn registry.Conn, log ghaction.Logger) (string, []Target, error) {
	d, err := conn.Resolve(ctx, "image", in.Image, log)
	if err != nil {
		return "", nil, err
	}
	targets, err := platformTargets(ctx, in, conn, d, log)
	return d.String(), targets, err
}

func platformTargets(ctx context.Context, in *Inputs, conn registry.Conn, d name.Digest, log ghaction.Logger) ([]Target, error) {
	log.Infof("image: %s", d)
	opts := conn.Options(ctx, d.String())
	desc, err := remote.Get(d, opts...)
	if err != nil {
		return nil, fmt.Errorf(`input "image": fetching %s: %w (check the reference, registry-username/-password, or insecure-registries for a plain-HTTP registry)`, d, err)
	}
	repo := d.Context()
	if !desc.MediaType.IsIndex() {
		img, err := desc.Image()
		if err != nil {
			return nil, fmt.Errorf(`input "image": %s is not an image or an index: %w`, d, err)
		}
		cf, err := img.ConfigFile()
		if err != nil {
			return nil, fmt.Errorf("reading the config of %s: %w", d, err)
		}
		p := cf.Platform()
		plat := ""
		if p != nil {
			plat = p.String()
		}
		if len(in.Platforms) > 0 && !slices.Contains(in.Platforms, plat) {
			return nil, fmt.Errorf(`input "platforms": %s is a single-platform image (%s), not %s: leave platforms empty`, d, plat, strings.Join(in.Platforms, ","))
		}
		return []Target{imageTarget(repo, d.DigestStr(), "", plat, img)}, nil
	}
	idx, err := desc.ImageIndex()
	if err != nil {
		return nil, err
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, err
	}
	var targets []Target
	var have []string
	for _, m := range im.Manifests {
		if m.Platform == nil || m.Platform.OS == "unknown" || !m.MediaType.IsImage() {
			continue // attestation manifests and nested indexes
		}
		plat := m.Platform.String()
		have = append(have, plat)
		if len(in.Platforms) > 0 && !slices.ContainsFunc(in.Platforms, func(p string) bool { return platformMatches(p, *m.Platform) }) {
			continue
		}
		img, err := idx.Image(m.Digest)
		if err != nil {
			return nil, err
		}
		targets = append(targets, imageTarget(repo, m.Digest.String(), d.String(), plat, img))
	}
	for _, p := range in.Platforms {
		if !slices.ContainsFunc(targets, func(t Target) bool { return t.Platform == p || strings.HasPrefix(t.Platform, p+"/") }) {
			return nil, fmt.Errorf(`input "platforms": %s has no %s manifest (it has %s): fix the platforms input or leave it empty for all`, d, p, strings.Join(have, ", "))
		}
	}
	if len(targets) == 0 {
		return nil, fmt.Errorf(`input "image": the index %s lists no platform images`, d)
	}
	log.Infof("platforms to scan: %d of %s", len(targets), strings.Join(have, ", "))
	return targets, nil
}

func platformMatches(want string, p v1.Platform) bool {
	w, err := v1.ParsePlatform(want)
	if err != nil {
		return false
	}
	return w.OS == p.OS && w.Architecture == p.Architecture && (w.Variant == "" || w.Variant == p.Variant)
}

func imageTarget(repo name.Repository, digest, index, plat string, img v1.Image) Target {
	ref := repo.String() + "@" + digest
	label := ref
	if plat != "" {
		label = repo.String() + " (" + plat + ")"
	}
	return Target{
		Kind: "image", Name: label, Category: category("gantry-scan", "image", repo.RepositoryStr(), plat),
		Image: img, Ref: ref, Index: index, Platform: plat,
	}
}

// releaseSection is the "scan" stage section of gantry-release.json.
type releaseSection struct {
	Verdict  string   `json:"verdict"`
	Gate     []string `json:"gate"`
	Counts   Counts   `json:"counts"`
	Failed   []string `json:"failed,omitempty"`
	Targets  []string `json:"targets"`
	Scanner  string   `json:"scanner"`
	DBBuilt  string   `json:"dbBuilt,omitempty"`
	Finished string   `json:"finishedOn"`
}

// recordRelease adds the scan section to the release record, by
// release.Add's rule (checked with release.Check before the scan): of the
// scanned image, or, for a repository-only scan, of the job's record as
// it is.
func recordRelease(in Inputs, rep Report, log ghaction.Logger) error {
	_, digest, _ := strings.Cut(rep.Image, "@")
	scanner := rep.Scanner.Name + " " + rep.Scanner.Version
	if h := rep.HistoryScanner; h != nil && h.Name != rep.Scanner.Name {
		scanner += ", " + h.Name + " " + h.Version
	}
	sec := releaseSection{Verdict: rep.Gate.Verdict, Gate: rep.Gate.Severities, Counts: rep.Counts, Scanner: scanner, Finished: rep.Finished.Format("2006-01-02T15:04:05Z07:00")}
	for _, f := range rep.Gate.Failed {
		if !slices.Contains(sec.Failed, f.ID) {
			sec.Failed = append(sec.Failed, f.ID)
		}
	}
	for _, t := range rep.Targets {
		sec.Targets = append(sec.Targets, cmp.Or(t.Ref, t.Name))
	}
	if rep.DB != nil {
		sec.DBBuilt = rep.DB.UpdatedAt.UTC().Format("2006-01-02T15:04:05Z")
	}
	_, err := release.Add(in.ReleaseFile, digest, "scan", sec, log.Warningf)
	return err
}
