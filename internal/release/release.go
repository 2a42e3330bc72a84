// Package release reads and writes gantry-release.json, the small record of
// one image's way through the pipeline: what was built (digests per
// platform, tags, base, source commit) and what each later stage did with
// it. The registry holds the evidence; this file is the human-readable index
// of it for job summaries and release notes.
package release

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
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

// ForDigest is the build's rule, the start of a record: the record at path
// when it describes digest (a build run again adds to it), else a fresh
// one (a missing file, or a record of another image left over from an
// earlier run, which the build replaces).
func ForDigest(path, digest string) Record {
	r, err := Read(path)
	if err != nil || r.Digest != digest {
		return Record{}
	}
	return r
}

// Check is what every stage after the build does before its work: a
// release-file that exists must be a release record (a stage that would
// only find out at the end would have done its work for nothing). No path,
// or no file, is fine: the stage runs without a build before it.
func Check(path string) error {
	if path == "" {
		return nil
	}
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if _, err := Read(path); err != nil {
		return fmt.Errorf(`input "release-file": %w (point it at the build stage's release-file output, or set it to "" to skip the record)`, err)
	}
	return nil
}

// Add is the one rule by which the stages after the build add their
// section to the record at path, for the image whose index (or one
// platform's) digest is digest ("" for work on no image, such as a
// repository scan, which adds to the job's record as it is): no path or
// no file, nothing (the
// record is the build's to start); a record of another image (left over
// from an earlier run, or a release-file meant for another job) is left as
// it is, with a warning naming both; otherwise the section is stored and
// the record written atomically. It returns the record's absolute path
// when it wrote it.
func Add(path, digest, stage string, section any, warn func(format string, args ...any)) (string, error) {
	if path == "" {
		return "", nil
	}
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	r, err := Read(path)
	if err != nil {
		return "", fmt.Errorf(`input "release-file": %w (point it at the build stage's release-file output, or set it to "" to skip the record)`, err)
	}
	if digest != "" && r.Digest != digest && !slices.ContainsFunc(r.Platforms, func(p Platform) bool { return p.Digest == digest }) {
		if warn != nil {
			warn("release record %s describes %s, not %s: its %s section is not added (point release-file at this image's record)", path, r.Image, digest, stage)
		}
		return "", nil
	}
	if err := r.SetStage(stage, section); err != nil {
		return "", err
	}
	p, err := Write(path, r)
	if err != nil {
		return "", fmt.Errorf(`writing the release record (input "release-file" = %q): %w`, path, err)
	}
	return p, nil
}
