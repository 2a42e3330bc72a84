package signing_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gantry-ci/gantry/internal/signing"
)

// TestKMSKey signs with a hashivault:// key URI through sigstore's KMS
// provider. No Vault runs offline, so a stand-in answers the two calls of
// Vault's transit API the provider makes (read the key, sign a digest),
// with a real ECDSA key; the cosign CLI then verifies with the public key.
func TestKMSKey(t *testing.T) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKIXPublicKey(&priv.PublicKey)
	pubPEM := string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	const token = "vault-test-token"
	signs := 0
	vault := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Vault-Token") != token {
			http.Error(w, `{"errors":["permission denied"]}`, http.StatusForbidden)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		switch {
		case r.Method == http.MethodGet && r.URL.Path == "/v1/transit/keys/gantry":
			json.NewEncoder(w).Encode(map[string]any{"data": map[string]any{
				"latest_version": 1, "keys": map[string]any{"1": map[string]any{"public_key": pubPEM}},
			}})
		case (r.Method == http.MethodPost || r.Method == http.MethodPut) && r.URL.Path == "/v1/transit/sign/gantry/sha2-256":
			var req struct {
				Input string `json:"input"`
			}
			json.NewDecoder(r.Body).Decode(&req)
			digest, err := base64.StdEncoding.DecodeString(req.Input)
			if err != nil {
				http.Error(w, `{"errors":["bad input"]}`, http.StatusBadRequest)
				return
			}
			sig, _ := ecdsa.SignASN1(rand.Reader, priv, digest)
			signs++
			json.NewEncoder(w).Encode(map[string]any{"data": map[string]any{"signature": "vault:v1:" + base64.StdEncoding.EncodeToString(sig)}})
		default:
			http.Error(w, `{"errors":["no handler for `+r.Method+" "+r.URL.Path+`"]}`, http.StatusNotFound)
		}
	}))
	t.Cleanup(vault.Close)
	// The provider reads its address and token from the environment, as
	// in a workflow step.
	t.Setenv("VAULT_ADDR", vault.URL)
	t.Setenv("VAULT_TOKEN", token)

	f := newFixture(t)
	in := f.keyInputs(f.image, "hashivault://gantry", "", "provenance")
	out, err := signing.Run(t.Context(), in)
	if err != nil {
		t.Fatal(err)
	}
	if signs != 6 || len(out.Signed) != 3 {
		t.Errorf("%d signatures made by the KMS, %d digests signed; want 6 and 3", signs, len(out.Signed))
	}
	pub := filepath.Join(f.dir, "vault.pub")
	writeFile(t, pub, pubPEM)
	if _, err := signing.Verify(t.Context(), f.image, keyPolicy(pub, "provenance")); err != nil {
		t.Errorf("verify with the KMS key's public key: %v", err)
	}
	if _, err := signing.Verify(t.Context(), f.image, keyPolicy("hashivault://gantry", "provenance")); err != nil {
		t.Errorf("verify with the KMS URI: %v", err)
	}
	newCosign(t).must(t, nil, "verify", "--key", pub, "--insecure-ignore-tlog=true", f.image)

	t.Setenv("VAULT_TOKEN", "wrong")
	_, err = signing.Run(t.Context(), in)
	if err == nil || !strings.Contains(err.Error(), `input "key": KMS key hashivault://gantry`) || !strings.Contains(err.Error(), "permission denied") {
		t.Errorf("signing with a wrong Vault token: %v", err)
	}
}
