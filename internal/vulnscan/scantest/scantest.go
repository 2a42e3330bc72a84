// Package scantest writes a small trivy vulnerability DB from the fixtures
// in testdata/vulndb, in the exact format trivy reads (a bbolt trivy.db and
// metadata.json written with the trivy-db package trivy v0.74.0 pins), packs
// it as the OCI artifact mirrors serve, and builds the crafted multi-arch
// image of testdata/scan/image. Tests, the benchmark and the demo use it so
// that nothing needs the network.
package scantest

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	trivydb "github.com/aquasecurity/trivy-db/pkg/db"
	"github.com/aquasecurity/trivy-db/pkg/metadata"
	dbtypes "github.com/aquasecurity/trivy-db/pkg/types"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
	bolt "go.etcd.io/bbolt"
	"sigs.k8s.io/yaml"
)

// Media types of trivy's DB artifact.
const (
	LayerMediaType  types.MediaType = "application/vnd.aquasec.trivy.db.layer.v1.tar+gzip"
	ConfigMediaType types.MediaType = "application/vnd.aquasec.trivy.config.v1+json"
)

// Fixtures is the content of testdata/vulndb/fixtures.yaml.
type Fixtures struct {
	Buckets []struct {
		Name   string `json:"name"`
		Source struct {
			ID   string `json:"id"`
			Name string `json:"name"`
			URL  string `json:"url"`
		} `json:"source"`
		Advisories []struct {
			Package    string   `json:"package"`
			ID         string   `json:"id"`
			Fixed      string   `json:"fixed"`
			Vulnerable []string `json:"vulnerable"`
			Patched    []string `json:"patched"`
		} `json:"advisories"`
	} `json:"buckets"`
	Vulnerabilities map[string]struct {
		Title       string   `json:"title"`
		Description string   `json:"description"`
		Severity    string   `json:"severity"`
		References  []string `json:"references"`
	} `json:"vulnerabilities"`
}

var buildMu sync.Mutex

// FixturesPath is the fixture file relative to the repository root.
const FixturesPath = "testdata/vulndb/fixtures.yaml"

// Build writes cacheDir/db/trivy.db and cacheDir/db/metadata.json from the
// fixture file, as updated at the given time (the DB's UpdatedAt; NextUpdate
// is a day later, like the published DB).
//
// trivy-db keeps its open DB in a process-wide variable: do not call Build
// while a scan runs in the same process. Builds from parallel tests take
// turns (buildMu): interleaved, one test's Init would replace another's
// open DB, leaving a handle, and its file lock, open for good — a scan
// process then waits on that lock forever.
func Build(cacheDir, fixtures string, updated time.Time) error {
	buildMu.Lock()
	defer buildMu.Unlock()
	raw, err := os.ReadFile(fixtures)
	if err != nil {
		return err
	}
	var fx Fixtures
	if err := yaml.UnmarshalStrict(raw, &fx); err != nil {
		return fmt.Errorf("%s: %w", fixtures, err)
	}
	dir := filepath.Join(cacheDir, "db")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	os.Remove(trivydb.Path(dir))
	if err := trivydb.Init(dir); err != nil {
		return fmt.Errorf("creating the fixture DB: %w", err)
	}
	dbc := trivydb.Config{}
	err = dbc.BatchUpdate(func(tx *bolt.Tx) error {
		ids := map[string]bool{}
		for _, b := range fx.Buckets {
			src := dbtypes.DataSource{ID: dbtypes.SourceID(b.Source.ID), Name: b.Source.Name, URL: b.Source.URL}
			if err := dbc.PutDataSource(tx, b.Name, src); err != nil {
				return err
			}
			for _, a := range b.Advisories {
				adv := dbtypes.Advisory{FixedVersion: a.Fixed, VulnerableVersions: a.Vulnerable, PatchedVersions: a.Patched}
				if err := dbc.PutAdvisoryDetail(tx, a.ID, a.Package, []string{b.Name}, adv); err != nil {
					return err
				}
				ids[a.ID] = true
			}
		}
		for id := range ids {
			if err := dbc.SaveAdvisoryDetails(tx, id); err != nil {
				return err
			}
		}
		for id, v := range fx.Vulnerabilities {
			sev, err := dbtypes.NewSeverity(v.Severity)
			if err != nil {
				return fmt.Errorf("%s: %w", id, err)
			}
			vuln := dbtypes.Vulnerability{
				Title:          v.Title,
				Description:    v.Description,
				Severity:       v.Severity,
				VendorSeverity: dbtypes.VendorSeverity{"nvd": sev},
				References:     v.References,
			}
			if err := dbc.PutVulnerability(tx, id, vuln); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil {
		err = dbc.DeleteAdvisoryDetailBucket()
	}
	if cerr := trivydb.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("writing the fixture DB: %w", err)
	}
	return metadata.NewClient(dir).Update(metadata.Metadata{
		Version:      trivydb.SchemaVersion,
		UpdatedAt:    updated.UTC(),
		NextUpdate:   updated.UTC().Add(24 * time.Hour),
		DownloadedAt: updated.UTC(),
	})
}

// Artifact packs cacheDir/db (as Build wrote it) into an OCI image shaped
// like the published trivy-db artifact: one tar+gzip layer, titled
// db.tar.gz, holding trivy.db and metadata.json.
func Artifact(cacheDir string) (v1.Image, error) {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, name := range []string{"trivy.db", "metadata.json"} {
		b, err := os.ReadFile(filepath.Join(cacheDir, "db", name))
		if err != nil {
			return nil, err
		}
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(b)), Typeflag: tar.TypeReg}); err != nil {
			return nil, err
		}
		if _, err := tw.Write(b); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	layer := static.NewLayer(buf.Bytes(), LayerMediaType)
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, ConfigMediaType)
	return mutate.Append(img, mutate.Addendum{Layer: layer, MediaType: LayerMediaType, Annotations: map[string]string{
		// The file name trivy unpacks the layer as, set by oras on the
		// published artifact; trivy's DB client requires it.
		"org.opencontainers.image.title": "db.tar.gz",
	}})
}

// Copy copies a DB directory (cacheDir/db) to another cache dir, so tests
// can hand each scan its own cache without rebuilding.
func Copy(fromCache, toCache string) error {
	for _, name := range []string{"trivy.db", "metadata.json"} {
		in, err := os.Open(filepath.Join(fromCache, "db", name))
		if err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Join(toCache, "db"), 0o755); err != nil {
			in.Close()
			return err
		}
		out, err := os.Create(filepath.Join(toCache, "db", name))
		if err != nil {
			in.Close()
			return err
		}
		_, err = io.Copy(out, in)
		in.Close()
		if cerr := out.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
	}
	return nil
}
