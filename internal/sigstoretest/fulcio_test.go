package sigstoretest

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"strings"
	"testing"
)

// certificateFor asks the Fulcio for a certificate for token, as a signer
// does (API v2, proof of possession of the key over the token's subject),
// and returns it.
func certificateFor(t *testing.T, s *Sigstore, token, subject string) *x509.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(subject))
	proof, err := ecdsa.SignASN1(rand.Reader, key, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(map[string]any{
		"credentials": map[string]string{"oidcIdentityToken": token},
		"publicKeyRequest": map[string]any{
			"publicKey":         map[string]string{"algorithm": "ECDSA", "content": string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))},
			"proofOfPossession": base64.StdEncoding.EncodeToString(proof),
		},
	})
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, s.FulcioURL+"/api/v2/signingCert", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("fulcio: %s: %s", resp.Status, raw)
	}
	type chain struct {
		Chain struct {
			Certificates []string `json:"certificates"`
		} `json:"chain"`
	}
	var answer struct {
		Embedded *chain `json:"signedCertificateEmbeddedSct"`
		Detached *chain `json:"signedCertificateDetachedSct"`
	}
	if err := json.Unmarshal(raw, &answer); err != nil {
		t.Fatalf("fulcio's answer: %v\n%s", err, raw)
	}
	c := answer.Detached
	if c == nil {
		c = answer.Embedded
	}
	if c == nil || len(c.Chain.Certificates) == 0 {
		t.Fatalf("fulcio answered no certificate: %s", raw)
	}
	certs, err := parseCerts([]byte(c.Chain.Certificates[0]))
	if err != nil {
		t.Fatal(err)
	}
	return certs[0]
}

// extension returns the value of the certificate extension 1.3.6.1.4.1.57264.1.<n>:
// a DER UTF8String from 1.8 on, raw bytes in the deprecated 1.2–1.6.
func extension(t *testing.T, c *x509.Certificate, n int) string {
	t.Helper()
	oid := asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, n}
	for _, e := range c.Extensions {
		if !e.Id.Equal(oid) {
			continue
		}
		if n < 8 {
			return string(e.Value)
		}
		var s string
		if _, err := asn1.UnmarshalWithParams(e.Value, &s, "utf8"); err != nil {
			t.Fatalf("extension %v: %v", oid, err)
		}
		return s
	}
	return ""
}

// TestFulcioGitHubExtensions checks what the local Fulcio (configured with
// the github-workflow issuer type, as the public instance is for GitHub's
// issuer) writes into certificates: the SAN is the job's workflow, and the
// caller's repository and ref are in the source repository extensions — so
// two repositories calling one reusable workflow get the same SAN and
// different source repositories, as on GitHub.
func TestFulcioGitHubExtensions(t *testing.T) {
	t.Parallel()
	s := startTimed(t, Options{})
	const reusable = "gantry-ci/gantry/.github/workflows/build-and-push.yml@0123456789abcdef0123456789abcdef01234567"
	for _, c := range []Claims{
		DefaultClaims(),
		ReusableWorkflowClaims(reusable, "acme/app", "refs/heads/main"),
		ReusableWorkflowClaims(reusable, "acme/other", "refs/tags/v2.0.0"),
	} {
		t.Run(c.Repository, func(t *testing.T) {
			cert := certificateFor(t, s, s.Issuer().Token(t, "sigstore", c), "repo:"+c.Repository+":ref:"+c.Ref)
			if len(cert.URIs) != 1 || cert.URIs[0].String() != c.Identity() {
				t.Errorf("SAN %v, want %s", cert.URIs, c.Identity())
			}
			owner, _, _ := strings.Cut(c.Repository, "/")
			for n, want := range map[int]string{
				1:  s.IssuerURL,                           // Issuer (deprecated)
				5:  c.Repository,                          // GitHub Workflow Repository (deprecated)
				6:  c.Ref,                                 // GitHub Workflow Ref (deprecated)
				8:  s.IssuerURL,                           // Issuer (V2)
				9:  c.Identity(),                          // Build Signer URI
				12: c.SourceRepositoryURI(),               // Source Repository URI
				14: c.Ref,                                 // Source Repository Ref
				15: c.RepositoryID,                        // Source Repository Identifier
				16: "https://github.com/" + owner,         // Source Repository Owner URI
				18: "https://github.com/" + c.WorkflowRef, // Build Config URI
			} {
				if got := extension(t, cert, n); got != want {
					t.Errorf("extension 1.3.6.1.4.1.57264.1.%d = %q, want %q", n, got, want)
				}
			}
		})
	}
	if a, b := ReusableWorkflowClaims(reusable, "acme/app", "refs/heads/main"), ReusableWorkflowClaims(reusable, "acme/other", "refs/heads/main"); a.Identity() != b.Identity() || a.SourceRepositoryURI() == b.SourceRepositoryURI() {
		t.Errorf("callers of one reusable workflow: identities %s, %s; source repositories %s, %s", a.Identity(), b.Identity(), a.SourceRepositoryURI(), b.SourceRepositoryURI())
	}
}
