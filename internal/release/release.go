// Package release reads and writes gantry-release.json, the small record of
// one image's way through the pipeline: what was built (digests per
// platform, tags, base, source commit) and what each later stage did with
// it. The registry holds the evidence; this file is the human-readable index
// of it for job summaries and release notes.
package release

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// Schema identifies the record format.
const Schema = "gantry.dev/release/v1"

// Record is the content of gantry-release.json.
type Record struct {
	Schema     string     `json:"schema"`
	Image      string     `json:"image"` // repo@sha256:...
	Repository string     `json:"repository"`
	Digest     string     `json:"digest"`
	Tags       []string   `json:"tags,omitempty"`
	Platforms  []Platform `json:"platforms"`
	Base       string     `json:"base,omitempty"`
	Source     Source     `json:"source"`
	Created    time.Time  `json:"created"`
	// Stages holds each stage's own section (build, sbom, sign, scan,
	// deploy ...), keyed by stage name.
	Stages map[string]json.RawMessage `json:"stages,omitempty"`
}

// Platform is one platform manifest of the image.
type Platform struct {
	Platform string `json:"platform"`
	Digest   string `json:"digest"`
	Size     int64  `json:"size,omitempty"`
}

// Source says where the image came from.
type Source struct {
	Repository string `json:"repository,omitempty"`
	URL        string `json:"url,omitempty"`
	Revision   string `json:"revision,omitempty"`
	Ref        string `json:"ref,omitempty"`
	Event      string `json:"event,omitempty"`
	RunURL     string `json:"runUrl,omitempty"`
}

// Read loads a record.
func Read(path string) (Record, error) {
	var r Record
	b, err := os.ReadFile(path)
	if err != nil {
		return r, err
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return r, fmt.Errorf("%s is not a Gantry release record: %w", path, err)
	}
	if r.Schema != Schema {
		return r, fmt.Errorf("%s has schema %q, want %q", path, r.Schema, Schema)
	}
	return r, nil
}

// SetStage stores a stage's section.
func (r *Record) SetStage(stage string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if r.Stages == nil {
		r.Stages = map[string]json.RawMessage{}
	}
	r.Stages[stage] = b
	return nil
}

// Write stores the record atomically (a reader never sees half a file) and
// returns its absolute path.
func Write(path string, r Record) (string, error) {
	r.Schema = Schema
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(filepath.Dir(abs), 0o755); err != nil {
		return "", err
	}
	tmp, err := os.CreateTemp(filepath.Dir(abs), ".gantry-release-*.json")
	if err != nil {
		return "", err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return "", err
	}
	if err := tmp.Close(); err != nil {
		return "", err
	}
	if err := os.Rename(tmp.Name(), abs); err != nil {
		return "", err
	}
	return abs, nil
}

// ForDigest reads the record at path when it describes digest, so later
// stages add to the same record; a missing file or a record of another image
// (left over from an earlier run) gives a fresh record.
func ForDigest(path, digest string) Record {
	r, err := Read(path)
	if err != nil || r.Digest != digest {
		return Record{}
	}
	return r
}
