package sigstoretest

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TokenTTL is how long a minted token is valid, as GitHub's are.
const TokenTTL = 10 * time.Minute

// Claims are the claims of a GitHub Actions OIDC token, the ones Fulcio's
// github-workflow issuer type requires and a few more that GitHub sends.
// An empty field is left out of the token, so a test can leave one out on
// purpose and see Fulcio refuse it.
type Claims struct {
	// Subject is the sub claim; empty means GitHub's default
	// "repo:<Repository>:ref:<Ref>".
	Subject              string
	Repository           string // acme/Prompt-Builder
	RepositoryID         string
	RepositoryOwner      string // acme
	RepositoryOwnerID    string
	RepositoryVisibility string // public, private, internal
	Ref                  string // refs/tags/v1.2.3
	RefType              string // tag, branch
	SHA                  string // the commit
	EventName            string // push, workflow_dispatch, ...
	Actor                string
	// Workflow is the workflow's name; WorkflowRef and WorkflowSHA name
	// the calling workflow file, JobWorkflowRef and JobWorkflowSHA the one
	// that runs the job (a reusable workflow when it is called). Fulcio
	// puts https://github.com/<JobWorkflowRef> in the certificate's SAN.
	Workflow          string
	WorkflowRef       string
	WorkflowSHA       string
	JobWorkflowRef    string
	JobWorkflowSHA    string
	RunID             string
	RunAttempt        string
	RunnerEnvironment string // github-hosted, self-hosted
}

// DefaultClaims are those of a release run of acme/Prompt-Builder for the
// tag v1.2.3.
func DefaultClaims() Claims {
	const sha = "4f6d0c1ab1e0c2b1f9d8a6e5c4b3a2918e7d6c5b"
	const wf = "acme/Prompt-Builder/.github/workflows/release.yml@refs/tags/v1.2.3"
	return Claims{
		Repository:           "acme/Prompt-Builder",
		RepositoryID:         "712345678",
		RepositoryOwner:      "acme",
		RepositoryOwnerID:    "91234567",
		RepositoryVisibility: "private",
		Ref:                  "refs/tags/v1.2.3",
		RefType:              "tag",
		SHA:                  sha,
		EventName:            "push",
		Actor:                "octocat",
		Workflow:             "release",
		WorkflowRef:          wf,
		WorkflowSHA:          sha,
		JobWorkflowRef:       wf,
		JobWorkflowSHA:       sha,
		RunID:                "9876543210",
		RunAttempt:           "1",
		RunnerEnvironment:    "github-hosted",
	}
}

// Identity is the certificate identity (SAN) Fulcio issues for tokens with
// these claims.
func (c Claims) Identity() string { return "https://github.com/" + c.JobWorkflowRef }

// SourceRepositoryURI is what Fulcio writes in the certificate's Source
// Repository URI extension (OID 1.3.6.1.4.1.57264.1.12) for tokens with
// these claims: the repository the run belongs to, which for a reusable
// workflow is the caller's.
func (c Claims) SourceRepositoryURI() string { return "https://github.com/" + c.Repository }

// ReusableWorkflowClaims are the claims of a run of repository (owner/name)
// for ref whose job is the reusable workflow jobWorkflowRef
// (owner/repo/.github/workflows/x.yml@ref), called from the caller's
// .github/workflows/ship.yml. Fulcio issues every caller the same identity,
// https://github.com/<jobWorkflowRef>; only the source repository
// extensions (and the token's subject) tell the callers apart.
func ReusableWorkflowClaims(jobWorkflowRef, repository, ref string) Claims {
	c := DefaultClaims()
	owner, _, _ := strings.Cut(repository, "/")
	h := fnv.New32a()
	h.Write([]byte(repository))
	c.Subject = ""
	c.Repository, c.RepositoryOwner = repository, owner
	c.RepositoryID = strconv.FormatUint(uint64(h.Sum32()), 10)
	c.Ref, c.RefType = ref, "branch"
	if strings.HasPrefix(ref, "refs/tags/") {
		c.RefType = "tag"
	}
	c.Workflow = "ship"
	c.WorkflowRef = repository + "/.github/workflows/ship.yml@" + ref
	c.JobWorkflowRef = jobWorkflowRef
	if _, sha, ok := strings.Cut(jobWorkflowRef, "@"); ok && len(sha) == 40 {
		c.JobWorkflowSHA = sha
	}
	return c
}

// Issuer is an OpenID Connect provider on a loopback port that mints
// GitHub-Actions-shaped tokens: discovery document, JWKS with one RSA key
// made at start, RS256 tokens. Fulcio verifies its tokens as it verifies
// GitHub's.
type Issuer struct {
	URL string // http://127.0.0.1:PORT, also the tokens' iss
	key *rsa.PrivateKey
	kid string
}

// StartIssuer starts an Issuer, stopped by t.Cleanup. It takes a few tens
// of milliseconds (the RSA key), so unit tests that only need tokens can
// use it without the rest of Sigstore.
func StartIssuer(t testing.TB) *Issuer {
	t.Helper()
	iss, srv, err := newIssuer()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	return iss
}

func newIssuer() (*Issuer, *httptest.Server, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, nil, fmt.Errorf("making the OIDC issuer's key: %w", err)
	}
	// Any string naming the key would do as its id.
	sum := sha256.Sum256(key.PublicKey.N.Bytes())
	iss := &Issuer{key: key, kid: base64.RawURLEncoding.EncodeToString(sum[:12])}

	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, map[string]any{
			"issuer":                                iss.URL,
			"jwks_uri":                              iss.URL + "/jwks",
			"subject_types_supported":               []string{"public", "pairwise"},
			"response_types_supported":              []string{"id_token"},
			"id_token_signing_alg_values_supported": []string{"RS256"},
			"claims_supported":                      []string{"sub", "aud", "exp", "iat", "iss", "jti", "nbf", "ref", "repository", "sha", "job_workflow_ref"},
			"scopes_supported":                      []string{"openid"},
		})
	})
	mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, map[string]any{"keys": []any{map[string]string{
			"kty": "RSA",
			"alg": "RS256",
			"use": "sig",
			"kid": iss.kid,
			"n":   base64.RawURLEncoding.EncodeToString(key.PublicKey.N.Bytes()),
			"e":   base64.RawURLEncoding.EncodeToString(big.NewInt(int64(key.PublicKey.E)).Bytes()),
		}}})
	})
	srv := httptest.NewServer(mux)
	iss.URL = srv.URL
	return iss, srv, nil
}

// Token mints a token with claims c for audience aud, valid from now for
// TokenTTL, and fails the test if it cannot.
func (i *Issuer) Token(t testing.TB, aud string, c Claims) string {
	t.Helper()
	tok, err := i.Mint(aud, c, time.Now(), TokenTTL)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// Mint signs a token with claims c for audience aud, issued at iat and
// valid for ttl; an expired or not yet valid token is a matter of choosing
// iat and ttl.
func (i *Issuer) Mint(aud string, c Claims, iat time.Time, ttl time.Duration) (string, error) {
	jti := make([]byte, 16)
	if _, err := rand.Read(jti); err != nil {
		return "", fmt.Errorf("minting a token: %w", err)
	}
	sub := c.Subject
	if sub == "" {
		sub = "repo:" + c.Repository + ":ref:" + c.Ref
	}
	claims := map[string]any{
		"iss": i.URL,
		"sub": sub,
		"aud": aud,
		"iat": iat.Unix(),
		"nbf": iat.Unix(),
		"exp": iat.Add(ttl).Unix(),
		"jti": base64.RawURLEncoding.EncodeToString(jti),
	}
	for k, v := range map[string]string{
		"repository":            c.Repository,
		"repository_id":         c.RepositoryID,
		"repository_owner":      c.RepositoryOwner,
		"repository_owner_id":   c.RepositoryOwnerID,
		"repository_visibility": c.RepositoryVisibility,
		"ref":                   c.Ref,
		"ref_type":              c.RefType,
		"sha":                   c.SHA,
		"event_name":            c.EventName,
		"actor":                 c.Actor,
		"workflow":              c.Workflow,
		"workflow_ref":          c.WorkflowRef,
		"workflow_sha":          c.WorkflowSHA,
		"job_workflow_ref":      c.JobWorkflowRef,
		"job_workflow_sha":      c.JobWorkflowSHA,
		"run_id":                c.RunID,
		"run_attempt":           c.RunAttempt,
		"runner_environment":    c.RunnerEnvironment,
	} {
		if v != "" {
			claims[k] = v
		}
	}
	// No email claim: with one, cosign proves possession of the email
	// rather than of sub, and Fulcio refuses the request.
	header, err := json.Marshal(map[string]string{"alg": "RS256", "typ": "JWT", "kid": i.kid})
	if err != nil {
		return "", fmt.Errorf("minting a token: %w", err)
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", fmt.Errorf("minting a token: %w", err)
	}
	signed := base64.RawURLEncoding.EncodeToString(header) + "." + base64.RawURLEncoding.EncodeToString(payload)
	digest := sha256.Sum256([]byte(signed))
	sig, err := rsa.SignPKCS1v15(nil, i.key, crypto.SHA256, digest[:])
	if err != nil {
		return "", fmt.Errorf("signing a token: %w", err)
	}
	return signed + "." + base64.RawURLEncoding.EncodeToString(sig), nil
}

func writeJSON(w http.ResponseWriter, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(b)
}
