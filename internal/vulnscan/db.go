package vulnscan

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/gantry-ci/gantry/internal/ghaction"
	"github.com/gantry-ci/gantry/internal/registry"
)

// dbLayerMediaType is the media type of the layer holding trivy.db and
// metadata.json in the trivy-db OCI artifact.
const dbLayerMediaType = "application/vnd.aquasec.trivy.db.layer.v1.tar+gzip"

// dbSchemaVersion is the trivy DB schema trivy v0.74 reads.
const dbSchemaVersion = 2

// DBInfo describes the vulnerability DB a scan used.
type DBInfo struct {
	// Repository is the mirror it was downloaded from (for a cached DB, as
	// recorded when it was downloaded; empty when it was put there by hand).
	Repository string    `json:"repository,omitempty"`
	Digest     string    `json:"digest,omitempty"`
	UpdatedAt  time.Time `json:"updatedAt"`
	NextUpdate time.Time `json:"nextUpdate"`
	// Source is "download" or "cache".
	Source string `json:"source"`
	Dir    string `json:"dir"`
}

// Version is the DB version as cosign's vuln predicate carries it: schema
// and build time.
func (d DBInfo) Version() string {
	return fmt.Sprintf("%d@%s", dbSchemaVersion, d.UpdatedAt.UTC().Format(time.RFC3339))
}

// originFile records, next to the DB, which mirror and digest it came
// from, so a DB restored from the cache still names its origin.
const originFile = "gantry-origin.json"

type dbOrigin struct {
	Repository string `json:"repository"`
	Digest     string `json:"digest"`
}

func readOrigin(dir string) (dbOrigin, error) {
	var o dbOrigin
	b, err := os.ReadFile(filepath.Join(dir, originFile))
	if err != nil {
		return o, err
	}
	return o, json.Unmarshal(b, &o)
}

// URI names the DB for the attestation: the mirror it came from, else
// the file.
func (d DBInfo) URI() string {
	if d.Repository != "" {
		if d.Digest != "" {
			return d.Repository + "@" + d.Digest
		}
		return d.Repository
	}
	return "file://" + filepath.ToSlash(filepath.Join(d.Dir, "trivy.db"))
}

// dbMetadata is trivy-db's metadata.json.
type dbMetadata struct {
	Version      int       `json:"Version,omitempty"`
	NextUpdate   time.Time `json:"NextUpdate"`
	UpdatedAt    time.Time `json:"UpdatedAt"`
	DownloadedAt time.Time `json:"DownloadedAt"`
}

func readDBMetadata(dir string) (dbMetadata, error) {
	var m dbMetadata
	b, err := os.ReadFile(filepath.Join(dir, "metadata.json"))
	if err != nil {
		return m, err
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return m, fmt.Errorf("%s: %w", filepath.Join(dir, "metadata.json"), err)
	}
	if _, err := os.Stat(filepath.Join(dir, "trivy.db")); err != nil {
		return m, err
	}
	return m, nil
}

// ensureDB makes cacheDir/db hold a usable DB: the cached one when it is
// fresh (or offline and younger than db-max-age), else a download from the
// first mirror that serves it.
func ensureDB(ctx context.Context, in *Inputs, conn registry.Conn, log ghaction.Logger) (DBInfo, error) {
	dir := filepath.Join(in.CacheDir, "db")
	now := in.now()
	meta, err := readDBMetadata(dir)
	cached := err == nil
	if cached && meta.Version != dbSchemaVersion {
		log.Warningf("the vulnerability DB in %s has schema %d, trivy %s reads schema %d: not using it", dir, meta.Version, "v0.74", dbSchemaVersion)
		cached = false
	}
	info := DBInfo{UpdatedAt: meta.UpdatedAt, NextUpdate: meta.NextUpdate, Source: "cache", Dir: dir}
	if o, err := readOrigin(dir); err == nil {
		info.Repository, info.Digest = o.Repository, o.Digest
	}
	if in.Offline {
		if !cached {
			return DBInfo{}, fmt.Errorf(`input "offline" is true but there is no vulnerability DB in %s (input "cache-dir"): restore it first (actions/cache keyed by date, path %s) or set offline: false to download it`, dir, in.CacheDir)
		}
		if age := now.Sub(meta.UpdatedAt); age > in.DBMaxAge {
			return DBInfo{}, fmt.Errorf(`input "offline" is true but the vulnerability DB in %s was built %s (%s ago), older than db-max-age %s: refresh the cache with offline: false, or raise db-max-age`, dir, meta.UpdatedAt.UTC().Format(time.RFC3339), age.Round(time.Hour), in.DBMaxAge)
		}
		log.Infof("vulnerability DB: offline, using the cache in %s (built %s)", dir, meta.UpdatedAt.UTC().Format(time.RFC3339))
		return info, nil
	}
	if cached && now.Before(meta.NextUpdate) {
		log.Infof("vulnerability DB: the cache in %s is fresh (built %s, next update %s)", dir, meta.UpdatedAt.UTC().Format(time.RFC3339), meta.NextUpdate.UTC().Format(time.RFC3339))
		return info, nil
	}
	d, err := downloadDB(ctx, in.DBRepositories, dir, conn, log)
	if err != nil {
		if cached && now.Sub(meta.UpdatedAt) <= in.DBMaxAge {
			log.Warningf("vulnerability DB: %v; using the cached DB built %s (within db-max-age %s)", err, meta.UpdatedAt.UTC().Format(time.RFC3339), in.DBMaxAge)
			return info, nil
		}
		return DBInfo{}, err
	}
	return d, nil
}

// downloadDB tries each mirror in order. Each request is retried with
// backoff (and Retry-After honoured) by the registry connection; a mirror
// that still fails hands over to the next.
func downloadDB(ctx context.Context, repos []string, dir string, conn registry.Conn, log ghaction.Logger) (DBInfo, error) {
	var errs []error
	for i, repo := range repos {
		log.Infof("vulnerability DB: trying mirror %d/%d %s", i+1, len(repos), repo)
		info, err := downloadFrom(ctx, repo, dir, conn, log)
		if err == nil {
			log.Infof("vulnerability DB: downloaded from %s (%s), built %s", repo, info.Digest, info.UpdatedAt.UTC().Format(time.RFC3339))
			return info, nil
		}
		if ctx.Err() != nil {
			return DBInfo{}, ctx.Err()
		}
		msg := err.Error()
		if strings.Contains(msg, "TOOMANYREQUESTS") || strings.Contains(msg, "429") {
			msg = "rate limited (TOOMANYREQUESTS) after retries: " + msg
		}
		if i+1 < len(repos) {
			log.Warningf("vulnerability DB: mirror %s failed: %s; falling back to %s", repo, msg, repos[i+1])
		} else {
			log.Warningf("vulnerability DB: mirror %s failed: %s", repo, msg)
		}
		errs = append(errs, fmt.Errorf("%s: %s", repo, msg))
	}
	return DBInfo{}, fmt.Errorf("downloading the vulnerability DB failed on every mirror of input \"db-repositories\" (add a mirror, or restore a cached DB into cache-dir and set offline: true):\n%w", errors.Join(errs...))
}

func downloadFrom(ctx context.Context, repo, dir string, conn registry.Conn, log ghaction.Logger) (DBInfo, error) {
	ref, err := name.ParseReference(repo, conn.NameOptions(repo)...)
	if err != nil {
		return DBInfo{}, fmt.Errorf(`input "db-repositories": %q is not an OCI reference, e.g. ghcr.io/aquasecurity/trivy-db:2`, repo)
	}
	opts := conn.Options(ctx, repo)
	img, err := remote.Image(ref, opts...)
	if err != nil {
		return DBInfo{}, err
	}
	layers, err := img.Layers()
	if err != nil {
		return DBInfo{}, err
	}
	digest, _ := img.Digest()
	for _, l := range layers {
		mt, err := l.MediaType()
		if err != nil {
			return DBInfo{}, err
		}
		if string(mt) != dbLayerMediaType {
			continue
		}
		size, _ := l.Size()
		rc, err := l.Compressed()
		if err != nil {
			return DBInfo{}, err
		}
		defer rc.Close()
		pr := &progressReader{r: rc, total: size, log: log, label: repo, next: 0}
		if err := extractDB(pr, dir); err != nil {
			return DBInfo{}, err
		}
		meta, err := readDBMetadata(dir)
		if err != nil {
			return DBInfo{}, fmt.Errorf("the artifact from %s has no usable metadata.json: %w", repo, err)
		}
		info := DBInfo{Repository: ref.String(), Digest: digest.String(), UpdatedAt: meta.UpdatedAt, NextUpdate: meta.NextUpdate, Source: "download", Dir: dir}
		if b, err := json.Marshal(dbOrigin{Repository: info.Repository, Digest: info.Digest}); err == nil {
			os.WriteFile(filepath.Join(dir, originFile), b, 0o644)
		}
		return info, nil
	}
	return DBInfo{}, fmt.Errorf("%s has no layer of media type %s: is it a trivy-db artifact?", repo, dbLayerMediaType)
}

// extractDB unpacks trivy.db and metadata.json next to dir and renames them
// into place, so an interrupted download never leaves half a DB.
func extractDB(r io.Reader, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), ".db-download-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	zr, err := gzip.NewReader(r)
	if err != nil {
		return fmt.Errorf("reading the DB layer: %w", err)
	}
	tr := tar.NewReader(zr)
	got := map[string]bool{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("reading the DB layer: %w", err)
		}
		base := filepath.Base(h.Name)
		if h.Typeflag != tar.TypeReg || (base != "trivy.db" && base != "metadata.json") {
			continue
		}
		f, err := os.Create(filepath.Join(tmp, base))
		if err != nil {
			return err
		}
		_, err = io.Copy(f, tr)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("writing %s: %w", base, err)
		}
		got[base] = true
	}
	if !got["trivy.db"] || !got["metadata.json"] {
		return errors.New("the DB layer lacks trivy.db or metadata.json")
	}
	// Record when it was downloaded, as trivy does.
	var m map[string]any
	b, err := os.ReadFile(filepath.Join(tmp, "metadata.json"))
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return fmt.Errorf("the DB's metadata.json: %w", err)
	}
	m["DownloadedAt"] = time.Now().UTC()
	if b, err = json.Marshal(m); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(tmp, "metadata.json"), b, 0o644); err != nil {
		return err
	}
	for _, n := range []string{"trivy.db", "metadata.json"} {
		if err := os.Rename(filepath.Join(tmp, n), filepath.Join(dir, n)); err != nil {
			return err
		}
	}
	return nil
}

// progressReader logs a line at every quarter of the download.
type progressReader struct {
	r     io.Reader
	total int64
	n     int64
	next  int
	log   ghaction.Logger
	label string
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.n += int64(n)
	if p.total > 0 {
		for pct := p.next; pct <= 100 && p.n*100 >= int64(pct)*p.total; pct += 25 {
			p.log.Infof("vulnerability DB: %3d%% of %s from %s", pct, humanBytes(p.total), p.label)
			p.next = pct + 25
		}
	}
	return n, err
}

func humanBytes(n int64) string {
	switch {
	case n >= 1e6:
		return fmt.Sprintf("%.1f MB", float64(n)/1e6)
	case n >= 1e3:
		return fmt.Sprintf("%.1f kB", float64(n)/1e3)
	}
	return fmt.Sprintf("%d B", n)
}
