package vulnscan

import (
	"cmp"
	"context"
	"fmt"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"

	trivydb "github.com/aquasecurity/trivy-db/pkg/db"
	dbtypes "github.com/aquasecurity/trivy-db/pkg/types"
	"github.com/aquasecurity/trivy/pkg/cache"
	tartifact "github.com/aquasecurity/trivy/pkg/commands/artifact"
	"github.com/aquasecurity/trivy/pkg/fanal/analyzer"
	"github.com/aquasecurity/trivy/pkg/fanal/applier"
	fartifact "github.com/aquasecurity/trivy/pkg/fanal/artifact"
	artimage "github.com/aquasecurity/trivy/pkg/fanal/artifact/image"
	artlocal "github.com/aquasecurity/trivy/pkg/fanal/artifact/local"
	ftypes "github.com/aquasecurity/trivy/pkg/fanal/types"
	"github.com/aquasecurity/trivy/pkg/fanal/walker"
	"github.com/aquasecurity/trivy/pkg/flag"
	"github.com/aquasecurity/trivy/pkg/licensing/expression"
	"github.com/aquasecurity/trivy/pkg/scan"
	"github.com/aquasecurity/trivy/pkg/scan/langpkg"
	"github.com/aquasecurity/trivy/pkg/scan/local"
	"github.com/aquasecurity/trivy/pkg/scan/ospkg"
	"github.com/aquasecurity/trivy/pkg/types"
	"github.com/aquasecurity/trivy/pkg/vulnerability"
	xos "github.com/aquasecurity/trivy/pkg/x/os"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Cleanup removes the temporary directory trivy made for this process
// (trivy-<n> under TMPDIR, holding layers and files while they are
// analysed). It is process-wide: call it once, when the process is done
// scanning; a later scan in the same process would find it gone.
func Cleanup() error { return xos.Cleanup() }

// trivyModule is the module whose version Version reports.
const trivyModule = "github.com/aquasecurity/trivy"

// Trivy scans with trivy as a library. Images are handed to trivy already
// fetched (with the stage's registry connection: credentials, plain-HTTP
// registries, retries), so trivy never talks to a Docker daemon.
//
// trivy keeps its open vulnerability DB in a process-wide variable: open one
// Trivy at a time in a process.
type Trivy struct {
	runner tartifact.Runner
	opts   flag.Options

	mu     sync.Mutex
	images map[string]v1.Image // by the target name handed to trivy
}

// NewTrivy opens trivy's DB (when vuln is enabled) from cfg.CacheDir/db. It
// never downloads anything: DB, checks and Java DB updates are all off, and
// misconfiguration checks are the ones embedded in trivy.
func NewTrivy(ctx context.Context, cfg ScannerConfig) (*Trivy, error) {
	t := &Trivy{images: map[string]v1.Image{}}
	var scanners types.Scanners
	for _, s := range cfg.Scanners {
		scanners = append(scanners, types.Scanner(s))
	}
	opts := flag.Options{}
	opts.CacheDir = cfg.CacheDir
	opts.Quiet = true
	opts.NoProgress = true
	opts.SkipDBUpdate = true
	opts.SkipJavaDBUpdate = true
	opts.SkipCheckUpdate = true
	opts.SkipVEXRepoUpdate = true
	opts.SkipVersionCheck = true
	opts.DisableTelemetry = true
	opts.OfflineScan = true
	opts.CacheBackend = "memory"
	opts.Scanners = scanners
	opts.PkgTypes = []string{types.PkgTypeOS, types.PkgTypeLibrary}
	opts.PkgRelationships = ftypes.Relationships
	opts.Parallel = 5
	opts.DetectionPriority = ftypes.PriorityPrecise
	opts.ImageSources = ftypes.ImageSources{ftypes.RemoteImageSource}
	// As the CLI's defaults: every config file type, and the severity
	// trivy picks for the data source ("auto").
	opts.MisconfigScanners = analyzer.TypeConfigFiles
	opts.VulnSeveritySources = []dbtypes.SourceID{"auto"}
	opts.Severities = []dbtypes.Severity{dbtypes.SeverityUnknown, dbtypes.SeverityLow, dbtypes.SeverityMedium, dbtypes.SeverityHigh, dbtypes.SeverityCritical}
	opts.LicenseConfidenceLevel = 0.9
	opts.LicenseCategories = map[ftypes.LicenseCategory][]string{
		ftypes.CategoryForbidden:    expression.ForbiddenLicenses,
		ftypes.CategoryRestricted:   expression.RestrictedLicenses,
		ftypes.CategoryReciprocal:   expression.ReciprocalLicenses,
		ftypes.CategoryNotice:       expression.NoticeLicenses,
		ftypes.CategoryPermissive:   expression.PermissiveLicenses,
		ftypes.CategoryUnencumbered: expression.UnencumberedLicenses,
	}
	opts.AppVersion = trivyVersion()
	t.opts = opts

	r, err := tartifact.NewRunner(ctx, opts, tartifact.TargetFilesystem, tartifact.WithInitializeService(t.service))
	if err != nil {
		return nil, fmt.Errorf("starting trivy with the vulnerability DB in %s: %w", filepath.Join(cfg.CacheDir, "db"), err)
	}
	t.runner = r
	return t, nil
}

// service builds trivy's local scan service for one target: the image we
// fetched, or a directory.
func (t *Trivy) service(ctx context.Context, conf tartifact.ScannerConfig) (scan.Service, func(), error) {
	c, cleanup, err := cache.New(conf.CacheOptions)
	if err != nil {
		return scan.Service{}, nil, fmt.Errorf("trivy cache: %w", err)
	}
	backend := local.NewService(applier.NewApplier(c), ospkg.NewScanner(), langpkg.NewScanner(), vulnerability.NewClient(trivydb.Config{}))
	t.mu.Lock()
	img, isImage := t.images[conf.Target]
	t.mu.Unlock()
	var art fartifact.Artifact
	if isImage {
		art, err = artimage.NewArtifact(trivyImage{Image: img, name: conf.Target}, c, conf.ArtifactOption)
	} else {
		art, err = artlocal.NewArtifact(conf.Target, c, walker.NewFS(), conf.ArtifactOption)
	}
	if err != nil {
		cleanup()
		return scan.Service{}, nil, err
	}
	return scan.NewService(backend, art), cleanup, nil
}

// Scan scans one target and normalizes trivy's results.
func (t *Trivy) Scan(ctx context.Context, target Target) ([]Finding, error) {
	opts := t.opts
	var (
		rep types.Report
		err error
	)
	switch target.Kind {
	case "image":
		name := target.Ref
		t.mu.Lock()
		t.images[name] = target.Image
		t.mu.Unlock()
		defer func() {
			t.mu.Lock()
			delete(t.images, name)
			t.mu.Unlock()
		}()
		opts.Target = name
		rep, err = t.runner.ScanImage(ctx, opts)
	default:
		opts.Target = target.Dir
		rep, err = t.runner.ScanFilesystem(ctx, opts)
	}
	if err != nil {
		return nil, fmt.Errorf("scanning %s: %w", target.Name, err)
	}
	if rep, err = t.runner.Filter(ctx, opts, rep); err != nil {
		return nil, fmt.Errorf("filtering the results of %s: %w", target.Name, err)
	}
	return findings(rep), nil
}

// Version is the trivy module version linked into this binary.
func (t *Trivy) Version() string { return strings.TrimPrefix(trivyVersion(), "v") }

// Close closes trivy's DB.
func (t *Trivy) Close() error { return t.runner.Close(context.Background()) }

func trivyVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == trivyModule {
				return d.Version
			}
		}
	}
	// Test binaries carry no dependency list; this is the version go.mod pins.
	return "v0.74.0"
}

// findings flattens trivy's report into Findings.
func findings(rep types.Report) []Finding {
	var out []Finding
	for _, r := range rep.Results {
		for _, v := range r.Vulnerabilities {
			out = append(out, Finding{
				Kind: KindVulnerability, ID: v.VulnerabilityID, Severity: cmp.Or(v.Severity, "UNKNOWN"),
				Title: v.Title, Package: v.PkgName, Installed: v.InstalledVersion, Fixed: v.FixedVersion,
				Source: sourceOf(r), File: cmp.Or(v.PkgPath, fileOf(r)), URL: v.PrimaryURL,
			})
		}
		for _, s := range r.Secrets {
			out = append(out, Finding{
				Kind: KindSecret, ID: s.RuleID, Severity: cmp.Or(s.Severity, "UNKNOWN"), Title: s.Title,
				Source: r.Target, File: r.Target, Line: s.StartLine,
			})
		}
		for _, m := range r.Misconfigurations {
			if m.Status != types.MisconfStatusFailure {
				continue
			}
			out = append(out, Finding{
				Kind: KindMisconfig, ID: m.ID, Severity: cmp.Or(m.Severity, "UNKNOWN"), Title: m.Title + ": " + m.Message,
				Source: r.Target, File: r.Target, Line: m.CauseMetadata.StartLine, URL: m.PrimaryURL, Resolution: m.Resolution,
			})
		}
		for _, l := range r.Licenses {
			out = append(out, Finding{
				Kind: KindLicense, ID: l.Name, Severity: cmp.Or(l.Severity, "UNKNOWN"),
				Title: fmt.Sprintf("%s license (%s)", l.Name, l.Category), Package: l.PkgName,
				Source: r.Target, File: cmp.Or(l.FilePath, fileOf(r)), URL: l.Link,
			})
		}
	}
	return out
}

// sourceOf names where a result's findings come from; for OS packages
// trivy names the image and the OS ("repo@sha256:… (alpine 3.20.3)"), of
// which the OS is the useful part.
func sourceOf(r types.Result) string {
	if r.Class == types.ClassOSPkg {
		if i := strings.LastIndex(r.Target, " ("); i >= 0 && strings.HasSuffix(r.Target, ")") {
			return r.Target[i+2:len(r.Target)-1] + " packages"
		}
	}
	return r.Target
}

// fileOf is the file a result's packages were read from, when the result is
// a file (a lockfile); OS package results name the OS instead.
func fileOf(r types.Result) string {
	if r.Class == types.ClassLangPkg || r.Class == types.ClassConfig || r.Class == types.ClassSecret {
		return r.Target
	}
	return ""
}

// trivyImage gives trivy an image we fetched ourselves.
type trivyImage struct {
	v1.Image
	name string
}

func (i trivyImage) Name() string { return i.name }

func (i trivyImage) ID() (string, error) {
	h, err := i.ConfigName()
	if err != nil {
		return "", err
	}
	return h.String(), nil
}

func (i trivyImage) RepoTags() []string { return nil }

func (i trivyImage) RepoDigests() []string { return []string{i.name} }
