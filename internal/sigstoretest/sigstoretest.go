// Package sigstoretest runs a private, offline Sigstore for keyless-signing
// tests: an OIDC issuer minting GitHub-Actions-shaped tokens, a Fulcio with
// an ephemeral CA trusting it, and optionally a Rekor v2 log (tiles, POSIX
// storage) with a timestamp authority. It writes the trusted_root.json and
// signing_config.json that cosign and sigstore-go read, and stands in for
// GitHub's OIDC token endpoint (ActionsTokenServer).
//
//	func TestSign(t *testing.T) {
//		s := sigstoretest.Start(t, sigstoretest.Options{TLog: true})
//		token := s.Token(t) // aud "sigstore", s.Claims
//		// sign with s.SigningConfig and token, verify with s.TrustedRoot,
//		// identity s.Identity(), issuer s.IssuerURL
//	}
//
// Fulcio, Rekor and the timestamp authority are the real servers, from
// bin/fulcio, bin/rekor and bin/tsa (`make tools`) or $FULCIO, $REKOR,
// $TSA; a missing binary fails the test, never skips it. There is no
// certificate transparency log: certificates carry no SCT, so verifiers
// must skip the SCT check (cosign --insecure-ignore-sct).
//
// It is for tests only; nothing in the product imports it.
package sigstoretest

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gantry-ci/gantry/internal/testproc"
)

// Options shape a Sigstore.
type Options struct {
	// TLog also starts Rekor v2 (tiles, POSIX storage) and a timestamp
	// authority, and adds them to the trusted root and signing config.
	// Rekor v2 needs the timestamp authority: its entries carry no signed
	// time for short-lived certificates.
	TLog bool
}

// Sigstore is a running private Sigstore.
type Sigstore struct {
	IssuerURL     string // http://127.0.0.1:PORT, the OIDC issuer (the certificate's OIDC issuer)
	FulcioURL     string
	RekorURL      string // "" without TLog
	TSAURL        string // the timestamp endpoint, http://127.0.0.1:PORT/api/v1/timestamp; "" without TLog
	TrustedRoot   string // path of trusted_root.json: Fulcio's chain; with TLog Rekor's key and the TSA's chain
	SigningConfig string // path of signing_config.json: Fulcio; with TLog Rekor (API v2) and the TSA
	FulcioRootPEM string // path of Fulcio's chain, PEM, root last

	// Claims are the claims of the tokens Token and ActionsTokenServer
	// mint, DefaultClaims at start. Change them before minting, not while
	// a request to ActionsTokenServer may be running.
	Claims Claims

	issuer *Issuer
}

// Start timeouts: each server is usually ready in well under a second; the
// margins are for a loaded machine.
const (
	fulcioReadyTimeout = 30 * time.Second
	rekorReadyTimeout  = 30 * time.Second
	tsaReadyTimeout    = 30 * time.Second
)

// Start starts a Sigstore in its own temporary directory on its own ports
// and returns once every server answers (with TLog: once Rekor has
// published a checkpoint). A failure fails the test; t.Cleanup stops
// everything, Rekor gracefully, and prints the servers' logs when the test
// failed. Several Sigstores can run in one test process.
func Start(t testing.TB, opts Options) *Sigstore {
	t.Helper()
	fulcioBin := testproc.Tool(t, "fulcio")
	var rekorBin, tsaBin string
	if opts.TLog {
		rekorBin = testproc.Tool(t, "rekor")
		tsaBin = testproc.Tool(t, "tsa")
	}
	began := time.Now()
	dir := t.TempDir()
	iss := StartIssuer(t)
	s := &Sigstore{IssuerURL: iss.URL, Claims: DefaultClaims(), issuer: iss}

	// Start everything, then wait: the servers get ready side by side.
	f := startFulcio(t, fulcioBin, dir, iss.URL)
	var r *rekor
	var a *tsa
	if opts.TLog {
		r = startRekor(t, rekorBin, dir)
		a = startTSA(t, tsaBin, dir)
	}

	// Any start of validity earlier than the tests' certificates will do.
	in := trustInputs{since: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC), fulcioURL: f.url}
	var err error
	s.FulcioURL = f.url
	s.FulcioRootPEM, in.fulcioChain, err = f.ready(dir, fulcioReadyTimeout)
	if err != nil {
		t.Fatal(err)
	}
	if opts.TLog {
		if in.tsaChain, err = a.ready(dir, tsaReadyTimeout); err != nil {
			t.Fatal(err)
		}
		if err := r.ready(dir, rekorReadyTimeout); err != nil {
			t.Fatal(err)
		}
		s.RekorURL, s.TSAURL = r.url, a.url+timestampPath
		in.rekorURL, in.rekorKey, in.tsaURL = s.RekorURL, r.key, s.TSAURL
	}

	tr, err := trustedRootJSON(in)
	if err != nil {
		t.Fatalf("writing the trusted root: %v", err)
	}
	if s.TrustedRoot, err = writeFile(dir, "trusted_root.json", tr); err != nil {
		t.Fatal(err)
	}
	sc, err := signingConfigJSON(in)
	if err != nil {
		t.Fatalf("writing the signing config: %v", err)
	}
	if s.SigningConfig, err = writeFile(dir, "signing_config.json", sc); err != nil {
		t.Fatal(err)
	}
	t.Logf("sigstoretest: started in %v (tlog: %v), files in %s", time.Since(began).Round(time.Millisecond), opts.TLog, dir)
	return s
}

// Token mints a fresh token for Fulcio: RS256, aud "sigstore", valid for
// ten minutes, with s.Claims.
func (s *Sigstore) Token(t testing.TB) string {
	t.Helper()
	return s.issuer.Token(t, "sigstore", s.Claims)
}

// Identity is the certificate identity (SAN) Fulcio issues for s.Claims:
// "https://github.com/" + JobWorkflowRef.
func (s *Sigstore) Identity() string { return s.Claims.Identity() }

// Issuer is the OIDC issuer, to mint tokens with other audiences, claims
// or lifetimes.
func (s *Sigstore) Issuer() *Issuer { return s.issuer }

// ActionsTokenServer stands in for GitHub's OIDC token endpoint. Set
// ACTIONS_ID_TOKEN_REQUEST_URL=url and ACTIONS_ID_TOKEN_REQUEST_TOKEN=
// requestToken for the code under test: GET url&audience=X with the header
// "Authorization: bearer <requestToken>" answers {"value":"<jwt>"}, a token
// of s.Claims for audience X (without audience, GitHub's default
// https://github.com/<owner>); another request token answers 401. Like
// GitHub's, url already has a query (?api-version=2.0), so that clients
// append "&audience=".
func (s *Sigstore) ActionsTokenServer(t testing.TB) (url, requestToken string) {
	t.Helper()
	b := make([]byte, 20)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	requestToken = hex.EncodeToString(b)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /_apis/distributedtask/idtoken", func(w http.ResponseWriter, r *http.Request) {
		scheme, got, _ := strings.Cut(r.Header.Get("Authorization"), " ")
		if !strings.EqualFold(scheme, "bearer") || subtle.ConstantTimeCompare([]byte(got), []byte(requestToken)) != 1 {
			http.Error(w, `{"message":"Bad credentials"}`, http.StatusUnauthorized)
			return
		}
		claims := s.Claims
		aud := r.URL.Query().Get("audience")
		if aud == "" {
			aud = "https://github.com/" + claims.RepositoryOwner
		}
		tok, err := s.issuer.Mint(aud, claims, time.Now(), TokenTTL)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		writeJSON(w, map[string]string{"value": tok})
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv.URL + "/_apis/distributedtask/idtoken?api-version=2.0", requestToken
}
