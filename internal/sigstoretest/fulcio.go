package sigstoretest

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gantry-ci/gantry/internal/testproc"
)

// fulcio is a Fulcio with an ephemeral CA, trusting one OIDC issuer.
type fulcio struct {
	url     string
	proc    *testproc.Proc
	restart func() // on new ports, after losing one of them
}

// startFulcio starts Fulcio without waiting for it. The certificate
// transparency log is off (--ct-log-url=), so certificates carry no SCT.
func startFulcio(t testing.TB, bin, dir, issuerURL string) *fulcio {
	t.Helper()
	cfg, err := json.Marshal(map[string]any{
		"OIDCIssuers": map[string]any{
			issuerURL: map[string]string{
				"IssuerURL": issuerURL,
				"ClientID":  "sigstore",
				"Type":      "github-workflow",
			},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	cfgPath, err := writeFile(dir, "fulcio-config.json", cfg)
	if err != nil {
		t.Fatal(err)
	}
	f := &fulcio{}
	f.restart = func() {
		ports := freePorts(t, 3)
		// The legacy gRPC server listens on an abstract unix socket whose
		// name defaults to a constant: two Fulcios would collide.
		sock := make([]byte, 8)
		if _, err := rand.Read(sock); err != nil {
			t.Fatal(err)
		}
		args := []string{
			"serve",
			"--ca=ephemeralca",
			"--config-path=" + cfgPath,
			"--ct-log-url=",
			"--host=127.0.0.1", "--port=" + ports[0],
			"--grpc-host=127.0.0.1", "--grpc-port=" + ports[1],
			"--metrics-port=" + ports[2],
			fmt.Sprintf("--legacy-unix-domain-socket=@sigstoretest-fulcio-%d-%s", os.Getpid(), hex.EncodeToString(sock)),
		}
		f.url = "http://127.0.0.1:" + ports[0]
		f.proc = startProc(t, dir, "fulcio", bin, args, childEnv(dir), 3*time.Second)
	}
	f.restart()
	return f
}

// ready waits until Fulcio serves its trust bundle and writes the chain
// (root last) to dir/fulcio-chain.pem.
func (f *fulcio) ready(dir string, timeout time.Duration) (path string, chain []*x509.Certificate, err error) {
	client := &http.Client{Timeout: 2 * time.Second}
	var pems []string
	err = waitRestarting(&f.proc, f.restart, timeout, func() (bool, error) {
		body, err := httpGet(context.Background(), client, f.url+"/api/v2/trustBundle")
		if err != nil {
			return false, err
		}
		var bundle struct {
			Chains []struct {
				Certificates []string `json:"certificates"`
			} `json:"chains"`
		}
		if err := json.Unmarshal(body, &bundle); err != nil {
			return false, fmt.Errorf("decoding the trust bundle: %w", err)
		}
		if len(bundle.Chains) == 0 || len(bundle.Chains[0].Certificates) == 0 {
			return false, errors.New("the trust bundle has no chain")
		}
		pems = bundle.Chains[0].Certificates
		return true, nil
	})
	if err != nil {
		return "", nil, fmt.Errorf("waiting for fulcio on %s: %w", f.url, err)
	}
	var b strings.Builder
	for _, p := range pems {
		b.WriteString(strings.TrimSpace(p))
		b.WriteString("\n")
	}
	chain, err = parseCerts([]byte(b.String()))
	if err != nil {
		return "", nil, fmt.Errorf("fulcio's trust bundle: %w", err)
	}
	path = filepath.Join(dir, "fulcio-chain.pem")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		return "", nil, err
	}
	return path, chain, nil
}

// parseCerts parses every certificate of a PEM bundle, in order.
func parseCerts(b []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	for {
		var block *pem.Block
		block, b = pem.Decode(b)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, err
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, errors.New("no certificate in PEM")
	}
	return certs, nil
}
