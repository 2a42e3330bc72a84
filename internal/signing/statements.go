package signing

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Predicate types, as cosign names them (`cosign attest --type …`).
const (
	// PredicateSignature is what `cosign sign` (v3) signs: a statement
	// about the digest with an empty predicate.
	PredicateSignature = "https://sigstore.dev/cosign/sign/v1"
	PredicateSPDX      = "https://spdx.dev/Document"      // --type spdxjson
	PredicateCycloneDX = "https://cyclonedx.org/bom"      // --type cyclonedx
	PredicateSLSA1     = "https://slsa.dev/provenance/v1" // --type slsaprovenance1
	PredicateVuln      = "https://cosign.sigstore.dev/attestation/vuln/v1"

	statementType = "https://in-toto.io/Statement/v1"
	// BuildType is the SLSA build type of provenance gantry writes: a
	// GitHub Actions workflow run.
	BuildType = "https://actions.github.io/buildtypes/workflow/v1"
)

// statement is an in-toto v1 statement.
type statement struct {
	Type          string          `json:"_type"`
	Subject       []subject       `json:"subject"`
	PredicateType string          `json:"predicateType"`
	Predicate     json.RawMessage `json:"predicate"`
}

type subject struct {
	Name   string            `json:"name,omitempty"`
	Digest map[string]string `json:"digest"`
}

func (s statement) subjectDigests() []string {
	var out []string
	for _, sub := range s.Subject {
		for alg, hex := range sub.Digest {
			out = append(out, alg+":"+hex)
		}
	}
	return out
}

// newStatement makes the statement that a signature or attestation signs.
func newStatement(repo, digest, predicateType string, predicate []byte) ([]byte, error) {
	alg, hex, ok := strings.Cut(digest, ":")
	if !ok {
		return nil, fmt.Errorf("%q is not a digest", digest)
	}
	if len(predicate) == 0 {
		predicate = []byte("{}")
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, predicate); err != nil {
		return nil, fmt.Errorf("the %s predicate is not JSON: %w", predicateType, err)
	}
	return json.Marshal(statement{
		Type:          statementType,
		Subject:       []subject{{Name: repo, Digest: map[string]string{alg: hex}}},
		PredicateType: predicateType,
		Predicate:     compact.Bytes(),
	})
}

// SBOM is one SBOM file for one platform.
type SBOM struct {
	Platform      string `json:"platform"`
	File          string `json:"file"`
	Format        string `json:"format"` // spdx or cyclonedx
	PredicateType string `json:"predicateType"`
	doc           []byte
}

// sbomNameRE matches <os>-<arch>[-<variant>].<spdx|cyclonedx|cdx>.json.
var sbomNameRE = regexp.MustCompile(`^([a-z0-9]+)-([a-z0-9_]+)(?:-([a-z0-9]+))?\.(spdx|cyclonedx|cdx)\.json$`)

// readSBOMs reads the sbom-files input: a JSON object platform → files,
// a JSON list of {"platform", "file", …}, or a
// directory of <os>-<arch>[-<variant>].<spdx|cyclonedx|cdx>.json files. The
// format is told by content, never by name.
func readSBOMs(input, dir string) ([]SBOM, error) {
	input = strings.TrimSpace(input)
	if input == "" {
		return nil, nil
	}
	byPlatform := map[string][]string{}
	if strings.HasPrefix(input, "[") {
		// A list: [{"platform":…,"file":…}, …].
		var docs []struct {
			Platform string `json:"platform"`
			File     string `json:"file"`
		}
		if err := json.Unmarshal([]byte(input), &docs); err != nil {
			return nil, fmt.Errorf(`input "sbom-files" is not a JSON list of {"platform", "file"} nor an object platform → files (the sbom-files output of gantry-sbom): %w`, err)
		}
		for _, d := range docs {
			if d.Platform == "" || d.File == "" {
				return nil, errors.New(`input "sbom-files": every entry of the list needs "platform" and "file"`)
			}
			byPlatform[d.Platform] = append(byPlatform[d.Platform], d.File)
		}
	} else if strings.HasPrefix(input, "{") {
		if err := json.Unmarshal([]byte(input), &byPlatform); err != nil {
			return nil, fmt.Errorf(`input "sbom-files" is not a JSON object of platform → list of files (the sbom-files output of gantry-sbom): %w`, err)
		}
	} else {
		path := input
		if !filepath.IsAbs(path) && dir != "" {
			path = filepath.Join(dir, path)
		}
		entries, err := os.ReadDir(path)
		if err != nil {
			return nil, fmt.Errorf(`input "sbom-files": %q is neither a JSON object nor a readable directory: %w`, input, err)
		}
		for _, e := range entries {
			m := sbomNameRE.FindStringSubmatch(e.Name())
			if e.IsDir() || m == nil {
				continue
			}
			p := m[1] + "/" + m[2]
			if m[3] != "" {
				p += "/" + m[3]
			}
			byPlatform[p] = append(byPlatform[p], filepath.Join(path, e.Name()))
		}
		if len(byPlatform) == 0 {
			return nil, fmt.Errorf(`input "sbom-files": no <os>-<arch>[-<variant>].<spdx|cyclonedx|cdx>.json files in %s`, path)
		}
	}
	platforms := make([]string, 0, len(byPlatform))
	for p := range byPlatform {
		platforms = append(platforms, p)
	}
	sort.Strings(platforms)
	var out []SBOM
	for _, p := range platforms {
		for _, f := range byPlatform[p] {
			path := f
			if !filepath.IsAbs(path) && dir != "" {
				path = filepath.Join(dir, path)
			}
			b, err := os.ReadFile(path)
			if err != nil {
				return nil, fmt.Errorf(`input "sbom-files": platform %s: %w`, p, err)
			}
			format, pt, err := sbomFormat(b)
			if err != nil {
				return nil, fmt.Errorf(`input "sbom-files": %s: %w`, f, err)
			}
			out = append(out, SBOM{Platform: p, File: f, Format: format, PredicateType: pt, doc: b})
		}
	}
	return out, nil
}

// sbomFormat tells SPDX JSON from CycloneDX JSON by their required fields.
func sbomFormat(b []byte) (format, predicateType string, err error) {
	var probe struct {
		SPDXVersion string `json:"spdxVersion"`
		BOMFormat   string `json:"bomFormat"`
	}
	if err := json.Unmarshal(b, &probe); err != nil {
		return "", "", fmt.Errorf("not a JSON SBOM: %w", err)
	}
	switch {
	case strings.HasPrefix(probe.SPDXVersion, "SPDX-"):
		return "spdx", PredicateSPDX, nil
	case probe.BOMFormat == "CycloneDX":
		return "cyclonedx", PredicateCycloneDX, nil
	}
	return "", "", errors.New(`neither SPDX JSON (no "spdxVersion") nor CycloneDX JSON (no "bomFormat": "CycloneDX")`)
}

// readScan reads the scan-result input: a cosign vulnerability predicate.
func readScan(path, dir string) ([]byte, error) {
	if path == "" {
		return nil, nil
	}
	if !filepath.IsAbs(path) && dir != "" {
		path = filepath.Join(dir, path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf(`input "scan-result": %w`, err)
	}
	var probe struct {
		Scanner *struct {
			URI string `json:"uri"`
		} `json:"scanner"`
		// An in-toto statement around the predicate is unwrapped.
		PredicateType string          `json:"predicateType"`
		Predicate     json.RawMessage `json:"predicate"`
	}
	if err := json.Unmarshal(b, &probe); err != nil {
		return nil, fmt.Errorf(`input "scan-result": %s is not JSON: %w`, path, err)
	}
	if probe.PredicateType != "" {
		if probe.PredicateType != PredicateVuln {
			return nil, fmt.Errorf(`input "scan-result": %s is a %s statement, want a cosign vulnerability predicate (%s)`, path, probe.PredicateType, PredicateVuln)
		}
		b = probe.Predicate
		probe.Scanner = nil
		if err := json.Unmarshal(b, &probe); err != nil {
			return nil, fmt.Errorf(`input "scan-result": %s: %w`, path, err)
		}
	}
	if probe.Scanner == nil {
		return nil, fmt.Errorf(`input "scan-result": %s is not a cosign vulnerability predicate (%s): it has no "scanner"; pass the attestation file of the scan stage`, path, PredicateVuln)
	}
	return b, nil
}

// BuildContext is the GitHub context SLSA provenance is built from. The
// caller fills it from the runner's GITHUB_* variables.
type BuildContext struct {
	ServerURL         string // https://github.com
	Repository        string // owner/name
	RepositoryID      string
	OwnerID           string
	Ref               string // refs/heads/main
	SHA               string
	WorkflowRef       string // owner/name/.github/workflows/x.yml@refs/heads/main
	EventName         string
	RunID             string
	RunAttempt        string
	RunnerEnvironment string         // github-hosted or self-hosted
	Inputs            map[string]any // workflow_dispatch / workflow_call inputs
	StartedOn         time.Time
}

// provenance builds a SLSA v1 provenance predicate for a workflow run.
func provenance(bc BuildContext) ([]byte, error) {
	if bc.Repository == "" || bc.SHA == "" {
		return nil, errors.New(`attestation "provenance" needs the GitHub context (GITHUB_REPOSITORY and GITHUB_SHA): run in GitHub Actions or set them`)
	}
	server := strings.TrimSuffix(bc.ServerURL, "/")
	if server == "" {
		server = "https://github.com"
	}
	workflowPath, workflowRef := "", bc.Ref
	if repoPath, ref, ok := strings.Cut(bc.WorkflowRef, "@"); ok {
		workflowPath = strings.TrimPrefix(repoPath, bc.Repository+"/")
		workflowRef = ref
	}
	builderID := server + "/" + bc.Repository
	if bc.WorkflowRef != "" {
		builderID = server + "/" + bc.WorkflowRef
	}
	attempt := bc.RunAttempt
	if attempt == "" {
		attempt = "1"
	}
	external := map[string]any{
		"workflow": map[string]string{"ref": workflowRef, "repository": server + "/" + bc.Repository, "path": workflowPath},
	}
	if len(bc.Inputs) > 0 {
		external["inputs"] = bc.Inputs
	}
	internal := map[string]any{"github": map[string]string{
		"event_name":          bc.EventName,
		"repository_id":       bc.RepositoryID,
		"repository_owner_id": bc.OwnerID,
		"runner_environment":  bc.RunnerEnvironment,
	}}
	uri := "git+" + server + "/" + bc.Repository
	if bc.Ref != "" {
		uri += "@" + bc.Ref
	}
	pred := map[string]any{
		"buildDefinition": map[string]any{
			"buildType":          BuildType,
			"externalParameters": external,
			"internalParameters": internal,
			"resolvedDependencies": []any{map[string]any{
				"uri":    uri,
				"digest": map[string]string{"gitCommit": bc.SHA},
			}},
		},
		"runDetails": map[string]any{
			"builder": map[string]string{"id": builderID},
			"metadata": map[string]any{
				"invocationId": fmt.Sprintf("%s/%s/actions/runs/%s/attempts/%s", server, bc.Repository, bc.RunID, attempt),
				"startedOn":    bc.StartedOn.UTC().Format(time.RFC3339),
			},
		},
	}
	if _, err := strconv.Atoi(bc.RunID); err != nil {
		return nil, fmt.Errorf(`attestation "provenance" needs the run id (GITHUB_RUN_ID), got %q`, bc.RunID)
	}
	return json.Marshal(pred)
}
