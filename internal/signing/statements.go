package signing

import (
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

	slsa "github.com/in-toto/attestation/go/predicates/provenance/v1"
	intoto "github.com/in-toto/attestation/go/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/gantry-ci/gantry/internal/runctx"
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

	// BuildType is the SLSA build type of provenance gantry writes: a
	// GitHub Actions workflow run.
	BuildType = "https://actions.github.io/buildtypes/workflow/v1"
)

// parseStatement reads an in-toto statement (JSON). Fields it does not
// know, such as ones a later version of the spec adds, are ignored; it is
// not validated.
func parseStatement(b []byte) (*intoto.Statement, error) {
	st := &intoto.Statement{}
	if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(b, st); err != nil {
		return nil, err
	}
	return st, nil
}

// subjectDigests lists the digests (alg:hex) of a statement's subjects.
func subjectDigests(st *intoto.Statement) []string {
	var out []string
	for _, sub := range st.GetSubject() {
		for alg, hex := range sub.GetDigest() {
			out = append(out, alg+":"+hex)
		}
	}
	return out
}

// newStatement makes the statement that a signature or attestation signs.
// The predicate is a JSON object; none is an empty one.
func newStatement(repo, digest, predicateType string, predicate []byte) ([]byte, error) {
	alg, hex, ok := strings.Cut(digest, ":")
	if !ok {
		return nil, fmt.Errorf("%q is not a digest", digest)
	}
	pred := &structpb.Struct{}
	if len(predicate) > 0 {
		if err := protojson.Unmarshal(predicate, pred); err != nil {
			return nil, fmt.Errorf("the %s predicate is not a JSON object: %w", predicateType, err)
		}
	}
	st := &intoto.Statement{
		Type:          intoto.StatementTypeUri,
		Subject:       []*intoto.ResourceDescriptor{{Name: repo, Digest: map[string]string{alg: hex}}},
		PredicateType: predicateType,
		Predicate:     pred,
	}
	if err := st.Validate(); err != nil {
		return nil, fmt.Errorf("the %s statement about %s is not a valid in-toto statement: %w", predicateType, digest, err)
	}
	return protojson.Marshal(st)
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
		PredicateType string `json:"predicateType"`
	}
	if err := json.Unmarshal(b, &probe); err != nil {
		return nil, fmt.Errorf(`input "scan-result": %s is not JSON: %w`, path, err)
	}
	if probe.PredicateType != "" {
		// An in-toto statement around the predicate is unwrapped (its
		// subject is not ours: the predicate is signed about the image).
		st, err := parseStatement(b)
		if err != nil {
			return nil, fmt.Errorf(`input "scan-result": %s is not an in-toto statement: %w`, path, err)
		}
		if st.GetPredicateType() != PredicateVuln {
			return nil, fmt.Errorf(`input "scan-result": %s is a %s statement, want a cosign vulnerability predicate (%s)`, path, st.GetPredicateType(), PredicateVuln)
		}
		if b, err = protojson.Marshal(st.GetPredicate()); err != nil {
			return nil, fmt.Errorf(`input "scan-result": %s: %w`, path, err)
		}
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

// BuildContext is the GitHub context SLSA provenance is built from. Build
// it with BuildContextFromRun from the run's context.
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

// BuildContextFromRun takes what provenance records from the run's
// context: the values as the CI gave them (run numbers as decimals, "" when
// unknown), and the workflow's inputs from the event payload.
func BuildContextFromRun(r *runctx.Run) BuildContext {
	bc := BuildContext{
		ServerURL:         r.ServerURL,
		Repository:        r.Repository,
		RepositoryID:      r.RepositoryID,
		OwnerID:           r.RepositoryOwnerID,
		Ref:               r.Ref,
		SHA:               r.SHA,
		WorkflowRef:       r.WorkflowRef,
		EventName:         r.EventName,
		RunID:             decimal(r.RunID),
		RunAttempt:        decimal(r.RunAttempt),
		RunnerEnvironment: r.RunnerEnvironment,
		StartedOn:         r.StartedOn,
	}
	if inputs, ok := r.EventValue("inputs").(map[string]any); ok {
		bc.Inputs = inputs
	}
	return bc
}

// decimal is n in decimal, "" for 0 (not given).
func decimal(n int64) string {
	if n == 0 {
		return ""
	}
	return strconv.FormatInt(n, 10)
}

// provenance builds a SLSA v1 provenance predicate (JSON) for a workflow
// run.
func provenance(bc BuildContext) ([]byte, error) {
	if bc.Repository == "" || bc.SHA == "" {
		return nil, errors.New(`attestation "provenance" needs the GitHub context (GITHUB_REPOSITORY and GITHUB_SHA): run in GitHub Actions or set them`)
	}
	if _, err := strconv.Atoi(bc.RunID); err != nil {
		return nil, fmt.Errorf(`attestation "provenance" needs the run id (GITHUB_RUN_ID), got %q`, bc.RunID)
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
		"workflow": map[string]any{"ref": workflowRef, "repository": server + "/" + bc.Repository, "path": workflowPath},
	}
	if len(bc.Inputs) > 0 {
		external["inputs"] = bc.Inputs
	}
	externalParams, err := structpb.NewStruct(external)
	if err != nil {
		return nil, fmt.Errorf(`attestation "provenance": the workflow inputs: %w`, err)
	}
	internalParams, err := structpb.NewStruct(map[string]any{"github": map[string]any{
		"event_name":          bc.EventName,
		"repository_id":       bc.RepositoryID,
		"repository_owner_id": bc.OwnerID,
		"runner_environment":  bc.RunnerEnvironment,
	}})
	if err != nil {
		return nil, fmt.Errorf(`attestation "provenance": %w`, err)
	}
	uri := "git+" + server + "/" + bc.Repository
	if bc.Ref != "" {
		uri += "@" + bc.Ref
	}
	pred := &slsa.Provenance{
		BuildDefinition: &slsa.BuildDefinition{
			BuildType:          BuildType,
			ExternalParameters: externalParams,
			InternalParameters: internalParams,
			ResolvedDependencies: []*intoto.ResourceDescriptor{{
				Uri:    uri,
				Digest: map[string]string{intoto.AlgorithmGitCommit.String(): bc.SHA},
			}},
		},
		RunDetails: &slsa.RunDetails{
			Builder: &slsa.Builder{Id: builderID},
			Metadata: &slsa.BuildMetadata{
				InvocationId: fmt.Sprintf("%s/%s/actions/runs/%s/attempts/%s", server, bc.Repository, bc.RunID, attempt),
				StartedOn:    timestamppb.New(bc.StartedOn),
			},
		},
	}
	if err := pred.Validate(); err != nil {
		return nil, fmt.Errorf(`attestation "provenance" is not valid SLSA provenance (is GITHUB_SHA a commit?): %w`, err)
	}
	return protojson.Marshal(pred)
}
