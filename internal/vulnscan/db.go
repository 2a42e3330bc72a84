package vulnscan

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/aquasecurity/trivy-db/pkg/metadata"
	trivydb "github.com/aquasecurity/trivy/pkg/db"
	ftypes "github.com/aquasecurity/trivy/pkg/fanal/types"
	"github.com/aquasecurity/trivy/pkg/oci"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/gantry-ci/gantry/internal/ghaction"
	"github.com/gantry-ci/gantry/internal/registry"
)

// dbLayerMediaType is the media type of the one layer of the trivy-db OCI
// artifact, holding trivy.db and metadata.json.
const dbLayerMediaType = "application/vnd.aquasec.trivy.db.layer.v1.tar+gzip"

// dbSchemaVersion is the trivy DB schema the linked trivy reads.
const dbSchemaVersion = trivydb.SchemaVersion

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

// readDBMetadata reads a DB directory's metadata.json with trivy-db's own
// reader and checks trivy.db is beside it.
func readDBMetadata(dir string) (metadata.Metadata, error) {
	m, err := metadata.NewClient(dir).Get()
	if err != nil {
		return m, fmt.Errorf("%s: %w", metadata.Path(dir), err)
	}
	if _, err := os.Stat(trivydb.Path(dir)); err != nil {
		return m, err
	}
	return m, nil
}

// ensureDB makes cacheDir/db hold a usable DB: the cached one when it is
// fresh (or offline and younger than db-max-age), else a download from the
// first mirror that serves it.
//
// These rules, and the mirror loop, are the stage's own rather than trivy's
// (db.Client.NeedsUpdate, oci.Artifacts.Download): trivy has no db-max-age,
// no falling back to the cache when every mirror fails, moves to the next
// mirror only on a registry's temporary error (not on a refused connection
// or a missing repository), logs to its own logger, and connects without
// the stage's keychain, insecure-registries list, backoff or context.
func ensureDB(ctx context.Context, in *Inputs, conn registry.Conn, log ghaction.Logger) (DBInfo, error) {
	dir := filepath.Join(in.CacheDir, "db")
	now := in.now()
	meta, err := readDBMetadata(dir)
	cached := err == nil
	if cached && meta.Version != dbSchemaVersion {
		log.Warningf("the vulnerability DB in %s has schema %d, trivy %s reads schema %d: not using it", dir, meta.Version, trivyVersion(), dbSchemaVersion)
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
	d, err := downloadDB(ctx, in.DBRepositories, in.Image, dir, conn, log)
	if err != nil {
		if cached && now.Sub(meta.UpdatedAt) <= in.DBMaxAge {
			log.Warningf("vulnerability DB: %v; using the cached DB built %s (within db-max-age %s)", err, meta.UpdatedAt.UTC().Format(time.RFC3339), in.DBMaxAge)
			return info, nil
		}
		return DBInfo{}, err
	}
	return d, nil
}

// downloadDB tries each mirror in order, each with the credentials
// mirrorConn allows it (image is the scan's "image" input, empty for a
// repository-only scan). Each request is retried with backoff (and
// Retry-After honoured) by the registry connection; a mirror that still
// fails hands over to the next.
func downloadDB(ctx context.Context, repos []string, image, dir string, conn registry.Conn, log ghaction.Logger) (DBInfo, error) {
	var errs []error
	for i, repo := range repos {
		log.Infof("vulnerability DB: trying mirror %d/%d %s", i+1, len(repos), repo)
		mc := mirrorConn(conn, image, repo)
		info, err := downloadFrom(ctx, repo, dir, mc, log)
		if err == nil {
			log.Infof("vulnerability DB: downloaded from %s (%s), built %s", repo, info.Digest, info.UpdatedAt.UTC().Format(time.RFC3339))
			return info, nil
		}
		if ctx.Err() != nil {
			return DBInfo{}, ctx.Err()
		}
		msg := err.Error()
		if rateLimited(err) {
			msg = "rate limited (TOOMANYREQUESTS) after retries: " + msg
		}
		if unauthorized(err) && conn.Username != "" && mc.Username == "" {
			msg += withheldHint(image, repo)
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

// mirrorConn is the connection a vulnerability DB mirror is reached with,
// and the one place that decides which credentials a mirror gets:
//
//   - registry-username/-password (Conn.Username/Password) are the image's:
//     they authenticate to the registry host of the "image" input and to no
//     other. A mirror on that very host (a private mirror beside a private
//     image) is read with them.
//   - A mirror on any other host (mirror.gcr.io, ghcr.io, another private
//     registry), and every mirror of a scan without an image, is reached
//     with the Docker config keychain (Conn.Keychain) alone, as trivy
//     reaches its DB: with a login the runner holds for that host, else
//     anonymously. The image's token never goes to a third-party mirror.
//
// Hosts compare as go-containerregistry names them (host[:port], lower
// case, docker.io as index.docker.io), the names Conn's keychain matches
// credentials by; localhost:5000 and 127.0.0.1:5000 are different hosts.
func mirrorConn(conn registry.Conn, image, repo string) registry.Conn {
	if conn.Username == "" {
		return conn
	}
	if host := registry.HostOf(strings.TrimSpace(image)); host == "" || host != registry.HostOf(strings.TrimSpace(repo)) {
		conn.Username, conn.Password = "", ""
	}
	return conn
}

// withheldHint explains a mirror's refusal when mirrorConn kept the
// image's credentials from it.
func withheldHint(image, repo string) string {
	mirror := registry.HostOf(strings.TrimSpace(repo))
	if host := registry.HostOf(strings.TrimSpace(image)); host != "" {
		return fmt.Sprintf(" (registry-username/-password are sent only to the image's registry %s; for a private mirror on another registry, log in to it before the step: docker login %s)", host, mirror)
	}
	return fmt.Sprintf(` (registry-username/-password are the image's and input "image" is empty, so no mirror gets them; for a private mirror, log in to it before the step: docker login %s)`, mirror)
}

// unauthorized tells a registry's refusal (401, 403) apart from other
// failures.
func unauthorized(err error) bool {
	var terr *transport.Error
	if errors.As(err, &terr) && (terr.StatusCode == http.StatusUnauthorized || terr.StatusCode == http.StatusForbidden) {
		return true
	}
	return false
}

// rateLimited tells a registry's 429 apart from other failures (whose
// messages may hold 429 in a temporary file's name).
func rateLimited(err error) bool {
	var terr *transport.Error
	if errors.As(err, &terr) && terr.StatusCode == http.StatusTooManyRequests {
		return true
	}
	return strings.Contains(err.Error(), "TOOMANYREQUESTS")
}

// downloadFrom fetches repo's manifest with conn, the stage's registry
// connection as mirrorConn narrows it for repo (credentials,
// insecure-registries, retries with backoff and Retry-After, the timeout),
// and hands the artifact to trivy's DB client, which checks it is trivy's
// single-layer DB artifact, downloads the layer, unpacks trivy.db and
// metadata.json and stamps DownloadedAt, as trivy itself does. It unpacks into a directory next to dir; only a DB that
// reads back is renamed into place, so a failed download never costs the
// cached DB.
func downloadFrom(ctx context.Context, repo, dir string, conn registry.Conn, log ghaction.Logger) (DBInfo, error) {
	ref, err := name.ParseReference(repo, conn.NameOptions(repo)...)
	if err != nil {
		return DBInfo{}, fmt.Errorf(`input "db-repositories": %q is not an OCI reference, e.g. ghcr.io/aquasecurity/trivy-db:2`, repo)
	}
	img, err := remote.Image(ref, conn.Options(ctx, repo)...)
	if err != nil {
		return DBInfo{}, err
	}
	digest, err := img.Digest()
	if err != nil {
		return DBInfo{}, err
	}
	// trivy checks this too, in words that do not say what is wrong.
	if m, err := img.Manifest(); err != nil {
		return DBInfo{}, err
	} else if len(m.Layers) != 1 || m.Layers[0].MediaType != dbLayerMediaType {
		return DBInfo{}, fmt.Errorf("%s is not a trivy-db artifact (one layer of media type %s): is it the DB repository?", repo, dbLayerMediaType)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return DBInfo{}, err
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), ".db-download-")
	if err != nil {
		return DBInfo{}, err
	}
	defer os.RemoveAll(tmp)
	// The image is already fetched, so the registry options trivy would
	// connect with are unused.
	art := oci.NewArtifact(ref.String(), ftypes.RegistryOptions{}, oci.WithImage(progressImage{Image: img, log: log, label: repo}))
	if err := trivydb.NewClient(tmp, true, trivydb.WithOCIArtifact(art)).Download(ctx, tmp, ftypes.RegistryOptions{}); err != nil {
		return DBInfo{}, err
	}
	meta, err := readDBMetadata(tmp)
	if err != nil {
		return DBInfo{}, fmt.Errorf("the artifact from %s is not a usable trivy DB: %w", repo, err)
	}
	for _, n := range []string{"trivy.db", "metadata.json"} {
		if err := os.Rename(filepath.Join(tmp, n), filepath.Join(dir, n)); err != nil {
			return DBInfo{}, err
		}
	}
	info := DBInfo{Repository: ref.String(), Digest: digest.String(), UpdatedAt: meta.UpdatedAt, NextUpdate: meta.NextUpdate, Source: "download", Dir: dir}
	if b, err := json.Marshal(dbOrigin{Repository: info.Repository, Digest: info.Digest}); err == nil {
		os.WriteFile(filepath.Join(dir, originFile), b, 0o644)
	}
	return info, nil
}

// progressImage is the fetched DB artifact whose layers log progress
// lines as trivy reads them.
type progressImage struct {
	v1.Image
	log   ghaction.Logger
	label string
}

func (i progressImage) Layers() ([]v1.Layer, error) {
	ls, err := i.Image.Layers()
	if err != nil {
		return nil, err
	}
	out := make([]v1.Layer, len(ls))
	for j, l := range ls {
		out[j] = progressLayer{Layer: l, log: i.log, label: i.label}
	}
	return out, nil
}

type progressLayer struct {
	v1.Layer
	log   ghaction.Logger
	label string
}

func (l progressLayer) Compressed() (io.ReadCloser, error) {
	rc, err := l.Layer.Compressed()
	if err != nil {
		return nil, err
	}
	size, _ := l.Size()
	return struct {
		io.Reader
		io.Closer
	}{&progressReader{r: rc, total: size, log: l.log, label: l.label}, rc}, nil
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
