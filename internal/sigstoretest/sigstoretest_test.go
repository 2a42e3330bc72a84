package sigstoretest

import (
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"math/big"
	"net/http"
	"strings"
	"testing"
	"time"
)

// decodeJWT verifies tok's RS256 signature with the issuer's published
// JWKS, as a relying party does, and returns its claims.
func decodeJWT(t *testing.T, issuerURL, tok string) map[string]any {
	t.Helper()
	var disc struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	getJSON(t, issuerURL+"/.well-known/openid-configuration", &disc)
	if disc.Issuer != issuerURL {
		t.Fatalf("discovery issuer = %q, want %q", disc.Issuer, issuerURL)
	}
	var jwks struct {
		Keys []struct {
			Kid, Kty, Alg, N, E string
		} `json:"keys"`
	}
	getJSON(t, disc.JWKSURI, &jwks)

	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("token has %d parts", len(parts))
	}
	var header struct{ Alg, Kid string }
	unmarshalB64(t, parts[0], &header)
	if header.Alg != "RS256" {
		t.Fatalf("alg = %q", header.Alg)
	}
	var pub *rsa.PublicKey
	for _, k := range jwks.Keys {
		if k.Kid == header.Kid && k.Kty == "RSA" {
			n, _ := base64.RawURLEncoding.DecodeString(k.N)
			e, _ := base64.RawURLEncoding.DecodeString(k.E)
			pub = &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}
		}
	}
	if pub == nil {
		t.Fatalf("no JWKS key with kid %q", header.Kid)
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		t.Fatal(err)
	}
	digest := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest[:], sig); err != nil {
		t.Fatalf("token signature: %v", err)
	}
	var claims map[string]any
	unmarshalB64(t, parts[1], &claims)
	return claims
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
}

func unmarshalB64(t *testing.T, s string, v any) {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatal(err)
	}
}

func TestIssuerToken(t *testing.T) {
	t.Parallel()
	iss := StartIssuer(t)
	c := DefaultClaims()
	c.RunAttempt = "" // left out of the token
	before := time.Now().Unix()
	claims := decodeJWT(t, iss.URL, iss.Token(t, "sigstore", c))

	want := map[string]any{
		"iss":                iss.URL,
		"aud":                "sigstore",
		"sub":                "repo:acme/Prompt-Builder:ref:refs/tags/v1.2.3",
		"repository":         "acme/Prompt-Builder",
		"repository_owner":   "acme",
		"ref":                "refs/tags/v1.2.3",
		"job_workflow_ref":   "acme/Prompt-Builder/.github/workflows/release.yml@refs/tags/v1.2.3",
		"runner_environment": "github-hosted",
	}
	for k, v := range want {
		if claims[k] != v {
			t.Errorf("claim %s = %v, want %v", k, claims[k], v)
		}
	}
	for _, k := range []string{"run_attempt", "email"} {
		if _, ok := claims[k]; ok {
			t.Errorf("claim %s is present", k)
		}
	}
	iat, _ := claims["iat"].(float64)
	exp, _ := claims["exp"].(float64)
	if int64(iat) < before-1 || exp-iat != TokenTTL.Seconds() {
		t.Errorf("iat = %v, exp = %v, want iat >= %d and a %v lifetime", iat, exp, before, TokenTTL)
	}
	if got, want := c.Identity(), "https://github.com/acme/Prompt-Builder/.github/workflows/release.yml@refs/tags/v1.2.3"; got != want {
		t.Errorf("Identity() = %q, want %q", got, want)
	}
}

func TestActionsTokenServer(t *testing.T) {
	t.Parallel()
	// Only the issuer is needed: a Sigstore without the servers.
	iss := StartIssuer(t)
	s := &Sigstore{IssuerURL: iss.URL, Claims: DefaultClaims(), issuer: iss}
	url, requestToken := s.ActionsTokenServer(t)
	if !strings.Contains(url, "?") {
		t.Fatalf("url %q has no query for clients to append &audience= to", url)
	}

	get := func(t *testing.T, url, auth string) (int, string) {
		t.Helper()
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
		if err != nil {
			t.Fatal(err)
		}
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}

	for _, tc := range []struct {
		name, query, auth string
		wantCode          int
		wantAud           string
	}{
		{"audience", "&audience=sigstore", "bearer " + requestToken, 200, "sigstore"},
		{"other audience, Bearer", "&audience=https%3A%2F%2Fexample.com", "Bearer " + requestToken, 200, "https://example.com"},
		{"default audience", "", "bearer " + requestToken, 200, "https://github.com/acme"},
		{"wrong request token", "&audience=sigstore", "bearer nope", 401, ""},
		{"no request token", "&audience=sigstore", "", 401, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := get(t, url+tc.query, tc.auth)
			if code != tc.wantCode {
				t.Fatalf("status %d (%s), want %d", code, body, tc.wantCode)
			}
			if tc.wantCode != 200 {
				return
			}
			var v struct{ Value string }
			if err := json.Unmarshal([]byte(body), &v); err != nil {
				t.Fatalf("answer %q: %v", body, err)
			}
			claims := decodeJWT(t, s.IssuerURL, v.Value)
			if claims["aud"] != tc.wantAud {
				t.Errorf("aud = %v, want %s", claims["aud"], tc.wantAud)
			}
			if claims["job_workflow_ref"] != s.Claims.JobWorkflowRef {
				t.Errorf("job_workflow_ref = %v", claims["job_workflow_ref"])
			}
		})
	}
}
