package signing

// This file is the only one that imports cosign and sigstore-go: their Go
// APIs carry no stability promise, so the rest of the package talks to them
// through Signer, the bundle store functions and bundleVerifier below.

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
	intoto "github.com/in-toto/attestation/go/v1"
	"github.com/sigstore/cosign/v3/pkg/cosign"
	"github.com/sigstore/cosign/v3/pkg/oci"
	ociremote "github.com/sigstore/cosign/v3/pkg/oci/remote"
	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	sgbundle "github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/fulcio/certificate"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/sign"
	"github.com/sigstore/sigstore-go/pkg/verify"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/sigstore/sigstore/pkg/signature/kms"
	sigopts "github.com/sigstore/sigstore/pkg/signature/options"
	"google.golang.org/protobuf/encoding/protojson"
)

// bundleArtifactPrefix starts the artifactType of every Sigstore bundle
// referrer (application/vnd.dev.sigstore.bundle.v0.3+json).
const bundleArtifactPrefix = "application/vnd.dev.sigstore.bundle"

// predicateAnnotation is the manifest annotation cosign writes with the
// bundle's predicate type, so readers can filter without downloading.
const predicateAnnotation = ociremote.BundlePredicateType

// Signer signs in-toto statements and returns serialized Sigstore bundles
// (v0.3, DSSE envelope), the format `cosign sign` and `cosign attest` write.
type Signer interface {
	// SignStatement signs one in-toto statement (JSON).
	SignStatement(ctx context.Context, statement []byte) ([]byte, error)
	// SignBlob signs a file's content: a bundle with a message signature
	// over its digest, what `cosign sign-blob --bundle` writes and
	// `cosign verify-blob --bundle` reads.
	SignBlob(ctx context.Context, data []byte) ([]byte, error)
	// Describe says who signs, for logs: a key fingerprint or "keyless (Fulcio …)".
	Describe() string
}

// GenerateKeyPair makes a new ECDSA P-256 key pair in cosign's format: the
// private key encrypted with password (as `cosign generate-key-pair`
// writes it) and the public key as PEM.
func GenerateKeyPair(password []byte) (privatePEM, publicPEM []byte, err error) {
	kb, err := cosign.GenerateKeyPair(func(bool) ([]byte, error) { return password, nil })
	if err != nil {
		return nil, nil, fmt.Errorf("generating a key pair: %w", err)
	}
	return kb.PrivateBytes, kb.PublicBytes, nil
}

// isKMS reports whether a key reference names a key in a KMS.
func isKMS(ref string) bool {
	for _, p := range []string{"awskms://", "gcpkms://", "azurekms://", "hashivault://"} {
		if strings.HasPrefix(ref, p) {
			return true
		}
	}
	return false
}

// loadSignerVerifier loads a private key: from a KMS URI, or from PEM bytes
// in cosign's encrypted format.
func loadSignerVerifier(ctx context.Context, ref string, pemBytes, password []byte) (signature.SignerVerifier, error) {
	if isKMS(ref) {
		sv, err := kms.Get(ctx, ref, crypto.SHA256)
		if err == nil {
			// Providers connect lazily: ask for the public key now, so a
			// bad credential is reported against the input.
			_, err = sv.PublicKey(sigopts.WithContext(ctx))
		}
		if err != nil {
			return nil, fmt.Errorf(`input "key": KMS key %s: %w (check the provider's credentials in the step's environment)`, ref, err)
		}
		return sv, nil
	}
	sv, err := cosign.LoadPrivateKey(pemBytes, password, nil)
	if err != nil {
		if strings.Contains(err.Error(), "decrypt") {
			return nil, errors.New(`input "key": the key could not be decrypted: check "key-password" (the password given to cosign generate-key-pair)`)
		}
		return nil, fmt.Errorf(`input "key": not a cosign private key (want the cosign.key written by cosign generate-key-pair): %w`, err)
	}
	return sv, nil
}

// loadVerifier loads a public key for verification: a PEM public key, a
// KMS URI, or a cosign private key (with its password) whose public half is used.
func loadVerifier(ctx context.Context, ref string, pemBytes, password []byte) (signature.Verifier, string, error) {
	if isKMS(ref) {
		sv, err := kms.Get(ctx, ref, crypto.SHA256)
		if err != nil {
			return nil, "", fmt.Errorf(`input "key": KMS key %s: %w (check the provider's credentials in the step's environment)`, ref, err)
		}
		pub, err := sv.PublicKey(sigopts.WithContext(ctx))
		if err != nil {
			return nil, "", fmt.Errorf(`input "key": KMS key %s: %w (check the provider's credentials in the step's environment)`, ref, err)
		}
		// Verify locally with the public key: no signing permission and
		// no KMS round trip per signature.
		v, err := signature.LoadDefaultVerifier(pub)
		if err != nil {
			return nil, "", fmt.Errorf(`input "key": KMS key %s: unsupported public key: %w`, ref, err)
		}
		return v, fingerprint(pub), nil
	}
	if pub, err := cryptoutils.UnmarshalPEMToPublicKey(pemBytes); err == nil {
		v, err := signature.LoadDefaultVerifier(pub)
		if err != nil {
			return nil, "", fmt.Errorf(`input "key": unsupported public key: %w`, err)
		}
		return v, fingerprint(pub), nil
	}
	if bytes.Contains(pemBytes, []byte("PRIVATE KEY")) {
		sv, err := loadSignerVerifier(ctx, ref, pemBytes, password)
		if err != nil {
			return nil, "", err
		}
		pub, err := sv.PublicKey()
		if err != nil {
			return nil, "", err
		}
		return sv, fingerprint(pub), nil
	}
	return nil, "", errors.New(`input "key": not a PEM public key (want cosign.pub, a KMS URI, or cosign.key with "key-password")`)
}

// fingerprint is a short, stable name for a public key: the first 16 hex
// digits of the SHA-256 of its PKIX encoding.
func fingerprint(pub crypto.PublicKey) string {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "unknown key"
	}
	sum := sha256.Sum256(der)
	return "sha256:" + hex.EncodeToString(sum[:8])
}

// keypair adapts a signature.SignerVerifier (file key or KMS key) to
// sigstore-go's sign.Keypair.
type keypair struct {
	sv   signature.SignerVerifier
	pub  crypto.PublicKey
	alg  signature.AlgorithmDetails
	hint []byte
}

func newKeypair(sv signature.SignerVerifier) (*keypair, error) {
	pub, err := sv.PublicKey()
	if err != nil {
		return nil, fmt.Errorf("reading the public key: %w", err)
	}
	alg, err := signature.GetDefaultAlgorithmDetails(pub)
	if err != nil {
		return nil, fmt.Errorf("unsupported key: %w", err)
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(der)
	return &keypair{sv: sv, pub: pub, alg: alg, hint: []byte(base64.StdEncoding.EncodeToString(sum[:]))}, nil
}

func (k *keypair) GetHashAlgorithm() protocommon.HashAlgorithm { return k.alg.GetProtoHashType() }
func (k *keypair) GetSigningAlgorithm() protocommon.PublicKeyDetails {
	return k.alg.GetSignatureAlgorithm()
}
func (k *keypair) GetHint() []byte                { return k.hint }
func (k *keypair) GetPublicKey() crypto.PublicKey { return k.pub }
func (k *keypair) GetKeyAlgorithm() string {
	switch k.pub.(type) {
	case *ecdsa.PublicKey:
		return "ECDSA"
	case *rsa.PublicKey:
		return "RSA"
	case ed25519.PublicKey:
		return "ED25519"
	}
	return ""
}
func (k *keypair) GetPublicKeyPem() (string, error) {
	b, err := cryptoutils.MarshalPublicKeyToPEM(k.pub)
	return string(b), err
}
func (k *keypair) SignData(ctx context.Context, data []byte) ([]byte, []byte, error) {
	opts := []signature.SignOption{sigopts.WithContext(ctx)}
	var digest []byte
	if h := k.alg.GetHashType(); h != crypto.Hash(0) {
		hh := h.New()
		hh.Write(data)
		digest = hh.Sum(nil)
		opts = append(opts, sigopts.WithDigest(digest))
	}
	sig, err := k.sv.SignMessage(bytes.NewReader(data), opts...)
	return sig, digest, err
}

// services are the Sigstore services a signer talks to.
type services struct {
	FulcioURL string
	RekorURL  string
	RekorAPI  uint32 // 1 or 2
	TSAURL    string
	// TrustedRoot, when set, checks every bundle right after signing.
	TrustedRoot root.TrustedMaterial
}

// checkWith makes the signer verify every bundle it makes against a
// trusted root file.
func (s *services) checkWith(trustedRootPath string) error {
	tr, err := root.NewTrustedRootFromPath(trustedRootPath)
	if err != nil {
		return fmt.Errorf(`input "trusted-root": %w`, err)
	}
	s.TrustedRoot = tr
	return nil
}

// servicesFromSigningConfig picks Fulcio, Rekor and TSA from a
// signing-config file (the format `cosign signing-config create` writes).
func servicesFromSigningConfig(path string, tlog bool) (services, error) {
	sc, err := root.NewSigningConfigFromPath(path)
	if err != nil {
		return services{}, fmt.Errorf(`input "signing-config": %w`, err)
	}
	var s services
	now := time.Now()
	if urls := sc.FulcioCertificateAuthorityURLs(); len(urls) > 0 {
		svc, err := root.SelectService(urls, sign.FulcioAPIVersions, now)
		if err != nil {
			return s, fmt.Errorf(`input "signing-config": Fulcio: %w`, err)
		}
		s.FulcioURL = svc.URL
	}
	if urls := sc.RekorLogURLs(); tlog && len(urls) > 0 {
		svcs, err := root.SelectServices(urls, sc.RekorLogURLsConfig(), sign.RekorAPIVersions, now)
		if err != nil {
			return s, fmt.Errorf(`input "signing-config": Rekor: %w`, err)
		}
		s.RekorURL, s.RekorAPI = svcs[0].URL, svcs[0].MajorAPIVersion
	}
	if urls := sc.TimestampAuthorityURLs(); len(urls) > 0 {
		svcs, err := root.SelectServices(urls, sc.TimestampAuthorityURLsConfig(), sign.TimestampAuthorityAPIVersions, now)
		if err != nil {
			return s, fmt.Errorf(`input "signing-config": TSA: %w`, err)
		}
		s.TSAURL = svcs[0].URL
	}
	return s, nil
}

// sigstoreSigner is the Signer over sigstore-go.
type sigstoreSigner struct {
	keypair  sign.Keypair
	certs    sign.CertificateProvider // nil in key mode
	token    string
	svc      services
	describe string
}

// newKeySigner signs with a private key (key mode).
func newKeySigner(sv signature.SignerVerifier, svc services) (*sigstoreSigner, error) {
	kp, err := newKeypair(sv)
	if err != nil {
		return nil, err
	}
	return &sigstoreSigner{keypair: kp, svc: svc, describe: "key " + fingerprint(kp.pub)}, nil
}

// newKeylessSigner signs with an ephemeral key whose Fulcio certificate
// binds it to the OIDC token's identity. One certificate serves the whole
// run (it is valid for ten minutes).
func newKeylessSigner(token string, svc services) (*sigstoreSigner, error) {
	if svc.FulcioURL == "" {
		return nil, errors.New(`keyless signing needs a Fulcio: set "fulcio-url" or "signing-config"`)
	}
	kp, err := sign.NewEphemeralKeypair(nil)
	if err != nil {
		return nil, err
	}
	fulcio := sign.NewFulcio(&sign.FulcioOptions{BaseURL: svc.FulcioURL, Timeout: 30 * time.Second, Retries: 2})
	return &sigstoreSigner{keypair: kp, certs: &onceCert{next: fulcio}, token: token, svc: svc, describe: "keyless (Fulcio " + svc.FulcioURL + ")"}, nil
}

func (s *sigstoreSigner) Describe() string { return s.describe }

func (s *sigstoreSigner) SignStatement(ctx context.Context, statement []byte) ([]byte, error) {
	return s.bundle(ctx, &sign.DSSEData{Data: statement, PayloadType: "application/vnd.in-toto+json"})
}

func (s *sigstoreSigner) SignBlob(ctx context.Context, data []byte) ([]byte, error) {
	return s.bundle(ctx, &sign.PlainData{Data: data})
}

// bundle signs content with the key or certificate and adds what the
// services give: a timestamp, a transparency log entry.
func (s *sigstoreSigner) bundle(ctx context.Context, content sign.Content) ([]byte, error) {
	opts := sign.BundleOptions{Context: ctx, TrustedRoot: s.svc.TrustedRoot}
	if s.certs != nil {
		opts.CertificateProvider = s.certs
		opts.CertificateProviderOptions = &sign.CertificateProviderOptions{IDToken: s.token}
	} else if opts.TrustedRoot != nil {
		// Key-signed bundles are checked against the key itself.
		opts.TrustedRoot = nil
	}
	if s.svc.TSAURL != "" {
		opts.TimestampAuthorities = append(opts.TimestampAuthorities, sign.NewTimestampAuthority(&sign.TimestampAuthorityOptions{URL: s.svc.TSAURL, Timeout: 30 * time.Second, Retries: 2}))
	}
	if s.svc.RekorURL != "" {
		api := s.svc.RekorAPI
		if api == 0 {
			api = 1
		}
		opts.TransparencyLogs = append(opts.TransparencyLogs, sign.NewRekor(&sign.RekorOptions{BaseURL: s.svc.RekorURL, Timeout: 90 * time.Second, Retries: 2, Version: api}))
	}
	b, err := sign.Bundle(content, s.keypair, opts)
	if err != nil {
		return nil, err
	}
	return protojson.Marshal(b)
}

// onceCert asks Fulcio once and hands the same certificate to every bundle.
type onceCert struct {
	next sign.CertificateProvider
	mu   sync.Mutex
	cert []byte
}

func (o *onceCert) GetCertificate(ctx context.Context, kp sign.Keypair, opts *sign.CertificateProviderOptions) ([]byte, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.cert != nil {
		return o.cert, nil
	}
	c, err := o.next.GetCertificate(ctx, kp, opts)
	if err != nil {
		return nil, fmt.Errorf("getting a signing certificate from Fulcio: %w", err)
	}
	o.cert = c
	return c, nil
}

// bundleReferrer makes the OCI referrer manifest of a bundle about
// subject, exactly as cosign v3's ociremote.WriteAttestationNewBundleFormat
// does (so `cosign verify` and `cosign verify-attestation` find it), and
// returns it with the blobs it needs: cosign's empty config and the bundle.
// Gantry pushes it itself so that it knows the manifest's digest and can
// check that the subject's referrers list it (registry.Attacher).
func bundleReferrer(subject v1.Descriptor, bundle []byte, predicateType string, created time.Time) ([]byte, []v1.Layer, error) {
	mt, err := sgbundle.MediaTypeString("0.3")
	if err != nil {
		return nil, nil, err
	}
	config := static.NewLayer([]byte("{}"), "application/vnd.oci.image.config.v1+json")
	layer := static.NewLayer(bundle, types.MediaType(mt))
	cd, err := config.Digest()
	if err != nil {
		return nil, nil, err
	}
	cs, err := config.Size()
	if err != nil {
		return nil, nil, err
	}
	ld, err := layer.Digest()
	if err != nil {
		return nil, nil, err
	}
	m := v1.Manifest{
		SchemaVersion: 2,
		MediaType:     types.OCIManifestSchema1,
		Config: v1.Descriptor{
			MediaType:    "application/vnd.oci.empty.v1+json",
			ArtifactType: mt,
			Digest:       cd,
			Size:         cs,
		},
		Layers:  []v1.Descriptor{{MediaType: types.MediaType(mt), Digest: ld, Size: int64(len(bundle))}},
		Subject: &v1.Descriptor{MediaType: subject.MediaType, Digest: subject.Digest, Size: subject.Size},
		Annotations: map[string]string{
			"org.opencontainers.image.created": created.UTC().Format(time.RFC3339),
			"dev.sigstore.bundle.content":      "dsse-envelope",
			predicateAnnotation:                predicateType,
		},
		ArtifactType: mt,
	}
	raw, err := json.Marshal(m)
	if err != nil {
		return nil, nil, err
	}
	return raw, []v1.Layer{config, layer}, nil
}

// storedBundle is one Sigstore bundle found as a referrer of a digest.
type storedBundle struct {
	Manifest      v1.Hash // the referrer manifest
	PredicateType string  // from the manifest annotation: unverified, for messages only
	Raw           []byte
	bundle        *sgbundle.Bundle
	parseErr      error
}

// listBundles returns every Sigstore bundle that refers to digest (OCI
// referrers API, or the sha256-<hex> referrers tag on registries without it).
func listBundles(digest name.Digest, ropts []remote.Option) ([]storedBundle, error) {
	idx, err := remote.Referrers(digest, ropts...)
	if err != nil {
		return nil, fmt.Errorf("listing the referrers of %s: %w", digest, err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, err
	}
	var out []storedBundle
	for _, d := range im.Manifests {
		// Registries report a referrer's artifactType differently (the
		// manifest's, or its config media type): look at the layer.
		if d.ArtifactType != "" && !strings.HasPrefix(d.ArtifactType, bundleArtifactPrefix) && d.ArtifactType != "application/vnd.oci.empty.v1+json" {
			continue
		}
		img, err := remote.Image(digest.Context().Digest(d.Digest.String()), ropts...)
		if err != nil {
			return nil, fmt.Errorf("reading the referrer %s of %s: %w", d.Digest, digest, err)
		}
		m, err := img.Manifest()
		if err != nil {
			return nil, fmt.Errorf("reading the referrer %s of %s: %w", d.Digest, digest, err)
		}
		if len(m.Layers) != 1 || !strings.HasPrefix(string(m.Layers[0].MediaType), bundleArtifactPrefix) {
			continue // not a Sigstore bundle (an SBOM artifact, say)
		}
		sb := storedBundle{Manifest: d.Digest, PredicateType: m.Annotations[predicateAnnotation]}
		if sb.Raw, err = firstLayer(img); err != nil {
			return nil, fmt.Errorf("reading the bundle %s of %s: %w", d.Digest, digest, err)
		}
		var b sgbundle.Bundle
		if err := b.UnmarshalJSON(sb.Raw); err != nil {
			sb.parseErr = fmt.Errorf("not a valid Sigstore bundle: %w", err)
		} else {
			sb.bundle = &b
		}
		out = append(out, sb)
	}
	return out, nil
}

func firstLayer(img v1.Image) ([]byte, error) {
	layers, err := img.Layers()
	if err != nil {
		return nil, err
	}
	if len(layers) != 1 {
		return nil, fmt.Errorf("want one bundle layer, found %d", len(layers))
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(io.LimitReader(rc, 64<<20))
}

// trust is what bundles are verified against.
type trust struct {
	key       signature.Verifier // key mode
	keyName   string
	root      root.TrustedMaterial // keyless
	identity  *verify.CertificateIdentity
	san       string
	sanRegexp string
	issuer    string
	// sourceRepo and sourceRef narrow the identity to runs of one
	// repository (its Source Repository URI) and of matching git refs.
	sourceRepo string
	sourceRef  *regexp.Regexp
	wantTlog   bool
	wantTSA    bool
	wantSCT    bool
	describes  string
}

// newKeyTrust trusts one public key.
func newKeyTrust(v signature.Verifier, name string) *trust {
	return &trust{key: v, keyName: name, describes: "key " + name}
}

// identityPolicy is what a keyless certificate must say.
type identityPolicy struct {
	SAN, SANRegexp, Issuer string
	SourceRepository       string // https://HOST/OWNER/NAME, as Fulcio writes it
	SourceRefRegexp        string
}

// newIdentityTrust trusts certificates from the trusted root's CAs issued
// to the policy's identity (exact or regexp) by its issuer, and, when set,
// to a run of its source repository and ref. What the trusted root lists is
// required: a transparency log entry when it has logs, a timestamp (TSA or
// log) when it has either, an SCT when it has CT logs.
func newIdentityTrust(trustedRootPath string, p identityPolicy) (*trust, error) {
	var tm root.TrustedMaterial
	var err error
	if trustedRootPath != "" {
		tm, err = root.NewTrustedRootFromPath(trustedRootPath)
		if err != nil {
			return nil, fmt.Errorf(`input "trusted-root": %w`, err)
		}
	} else {
		tm, err = root.FetchTrustedRoot()
		if err != nil {
			return nil, fmt.Errorf(`fetching the public-good Sigstore trusted root (TUF) failed; set "trusted-root" for a private Sigstore: %w`, err)
		}
	}
	san, err := verify.NewSANMatcher(p.SAN, p.SANRegexp)
	if err != nil {
		return nil, fmt.Errorf(`input "certificate-identity-regexp": %w`, err)
	}
	iss, err := verify.NewIssuerMatcher(p.Issuer, "")
	if err != nil {
		return nil, err
	}
	// sigstore-go compares the extension itself; checkSource below only
	// explains a mismatch and checks the ref.
	id, err := verify.NewCertificateIdentity(san, iss, certificate.Extensions{SourceRepositoryURI: p.SourceRepository})
	if err != nil {
		return nil, fmt.Errorf(`inputs "certificate-identity"/"certificate-identity-regexp"/"certificate-oidc-issuer": %w`, err)
	}
	t := &trust{root: tm, identity: &id, san: p.SAN, sanRegexp: p.SANRegexp, issuer: p.Issuer, sourceRepo: p.SourceRepository,
		wantTlog: len(tm.RekorLogs()) > 0, wantTSA: len(tm.TimestampingAuthorities()) > 0, wantSCT: len(tm.CTLogs()) > 0}
	if p.SourceRefRegexp != "" {
		if t.sourceRef, err = regexp.Compile(p.SourceRefRegexp); err != nil {
			return nil, fmt.Errorf(`input "verify-source-ref-regexp": %w`, err)
		}
	}
	who := p.SAN
	if who == "" {
		who = "~" + p.SANRegexp
	}
	t.describes = fmt.Sprintf("identity %s from issuer %s", who, p.Issuer)
	if p.SourceRepository != "" {
		t.describes += ", source repository " + p.SourceRepository
	}
	if p.SourceRefRegexp != "" {
		t.describes += ", source ref ~" + p.SourceRefRegexp
	}
	return t, nil
}

// checkSource checks the certificate's source repository and ref against
// the policy, with a reason that names what the certificate says and what
// the policy wants.
func (t *trust) checkSource(c certificate.Summary) error {
	if t.sourceRepo != "" {
		switch got := c.SourceRepositoryURI; {
		case got == "":
			return fmt.Errorf("the certificate names no source repository (no Source Repository URI extension, OID 1.3.6.1.4.1.57264.1.12: not issued to a GitHub Actions run, or by an old Fulcio), but verify-source-repository requires %s", t.sourceRepo)
		case got != t.sourceRepo:
			return fmt.Errorf("the certificate was issued to a run of %s, but verify-source-repository requires %s: another repository signed with the same workflow identity", got, t.sourceRepo)
		}
	}
	if t.sourceRef != nil {
		switch got := c.SourceRepositoryRef; {
		case got == "":
			return fmt.Errorf("the certificate names no git ref (no Source Repository Ref extension, OID 1.3.6.1.4.1.57264.1.14), but verify-source-ref-regexp requires one matching %q", t.sourceRef)
		case !t.sourceRef.MatchString(got):
			return fmt.Errorf("the certificate was issued to a run for %s, which does not match verify-source-ref-regexp %q", got, t.sourceRef)
		}
	}
	return nil
}

// bundleCertificate summarizes the signing certificate of a bundle, if
// it has one.
func bundleCertificate(b *sgbundle.Bundle) (certificate.Summary, bool) {
	vc, err := b.VerificationContent()
	if err != nil || vc.Certificate() == nil {
		return certificate.Summary{}, false
	}
	s, err := certificate.SummarizeCertificate(vc.Certificate())
	return s, err == nil
}

// verified is what a bundle proved.
type verified struct {
	PredicateType string
	Subjects      []string // sha256:… of the statement's subjects
	Signer        string   // key fingerprint or certificate SAN
	Issuer        string
}

// verifyBundle checks one bundle's signature and its certificate or key
// against t, and that its statement is about digest.
func (t *trust) verifyBundle(sb storedBundle, digest string) (verified, error) {
	if sb.parseErr != nil {
		return verified{}, sb.parseErr
	}
	var v verified
	st, err := statementOf(sb.bundle)
	if err != nil {
		return v, err
	}
	v.PredicateType, v.Subjects = st.GetPredicateType(), subjectDigests(st)
	if !containsString(v.Subjects, digest) {
		return v, fmt.Errorf("the signed statement is about %s, not %s: a signature moved from another image", strings.Join(v.Subjects, ", "), digest)
	}
	alg, hexd, _ := strings.Cut(digest, ":")
	raw, err := hex.DecodeString(hexd)
	if err != nil {
		return v, err
	}
	v.Signer, v.Issuer, err = t.verifySigned(sb.bundle, verify.WithArtifactDigest(alg, raw))
	return v, err
}

// verifySigned checks a bundle's signature over artifact and its key or
// certificate against t, and says who signed.
func (t *trust) verifySigned(b *sgbundle.Bundle, artifact verify.ArtifactPolicyOption) (signer, issuer string, err error) {
	var tm root.TrustedMaterial
	var vopts []verify.VerifierOption
	var popts []verify.PolicyOption
	if t.key != nil {
		if b.VerificationMaterial.GetPublicKey() == nil {
			return "", "", errors.New("signed keyless (with a certificate), but the policy trusts a key")
		}
		k := root.NewExpiringKey(t.key, time.Time{}, time.Time{})
		tm = root.NewTrustedPublicKeyMaterial(func(string) (root.TimeConstrainedVerifier, error) { return k, nil })
		vopts = append(vopts, verify.WithNoObserverTimestamps())
		popts = append(popts, verify.WithKey())
	} else {
		if b.VerificationMaterial.GetPublicKey() != nil {
			return "", "", errors.New("signed with a key, but the policy trusts a keyless identity")
		}
		tm = t.root
		if t.wantTlog {
			vopts = append(vopts, verify.WithTransparencyLog(1))
		}
		switch {
		case t.wantTSA || t.wantTlog:
			// The certificate must have been valid when signing: proven by
			// a TSA timestamp or a Rekor v1 entry's integrated time.
			vopts = append(vopts, verify.WithObserverTimestamps(1))
		default:
			// No log and no timestamp authority in the trusted root: the
			// short-lived certificate is checked against the current time,
			// as `cosign verify --insecure-ignore-tlog` does.
			vopts = append(vopts, verify.WithCurrentTime())
		}
		if t.wantSCT {
			vopts = append(vopts, verify.WithSignedCertificateTimestamps(1))
		}
		popts = append(popts, verify.WithCertificateIdentity(*t.identity))
	}
	verifier, err := verify.NewVerifier(tm, vopts...)
	if err != nil {
		return "", "", err
	}
	res, err := verifier.Verify(b, verify.NewPolicy(artifact, popts...))
	if err != nil {
		var ext *certificate.ErrCompareExtensions
		if errors.As(err, &ext) {
			if c, ok := bundleCertificate(b); ok {
				if serr := t.checkSource(c); serr != nil {
					return "", "", serr
				}
			}
		}
		return "", "", explain(err)
	}
	if t.key != nil {
		return "key " + t.keyName, "", nil
	}
	if res.Signature == nil || res.Signature.Certificate == nil {
		return "", "", errors.New("verified, but the result names no certificate")
	}
	if err := t.checkSource(*res.Signature.Certificate); err != nil {
		return "", "", err
	}
	return res.Signature.Certificate.SubjectAlternativeName, res.Signature.Certificate.Issuer, nil
}

// verifyBlob checks a file's bundle (raw JSON) against t: a message
// signature over exactly the file's content (sum is its SHA-256).
func (t *trust) verifyBlob(raw []byte, file string, sum []byte) (verified, error) {
	var v verified
	var b sgbundle.Bundle
	if err := b.UnmarshalJSON(raw); err != nil {
		return v, fmt.Errorf("not a valid Sigstore bundle: %w", err)
	}
	ms := b.GetMessageSignature()
	if ms == nil {
		return v, errors.New("the bundle holds a DSSE envelope (an attestation, as cosign attest-blob writes), not a signature of the file")
	}
	if md := ms.GetMessageDigest(); md != nil && md.GetAlgorithm() == protocommon.HashAlgorithm_SHA2_256 && !bytes.Equal(md.GetDigest(), sum) {
		return v, fmt.Errorf("the file is not what was signed: its sha256 is %x, the bundle signed %x (the file changed after signing, or the bundle is another file's)", sum, md.GetDigest())
	}
	f, err := os.Open(file)
	if err != nil {
		return v, err
	}
	defer f.Close()
	v.Signer, v.Issuer, err = t.verifySigned(&b, verify.WithArtifact(f))
	return v, err
}

// explain turns sigstore-go's errors into what a user should check.
func explain(err error) error {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "failed to verify signature"), strings.Contains(msg, "could not verify envelope"), strings.Contains(msg, "invalid signature"):
		return fmt.Errorf("the signature does not verify with the trusted key (signed with another key?): %w", err)
	case strings.Contains(msg, "not enough verified log entries"):
		return fmt.Errorf("the signature is not in the transparency log the trusted root lists (signed with tlog-upload: false?): %w", err)
	case strings.Contains(msg, "SAN"), strings.Contains(msg, "issuer"), strings.Contains(msg, "CertificateIdentity"):
		return fmt.Errorf("the certificate's identity does not match the policy: %w", err)
	}
	return err
}

// statementOf reads the in-toto statement in a bundle's DSSE envelope
// (before verification: only for the subject check and messages).
func statementOf(b *sgbundle.Bundle) (*intoto.Statement, error) {
	env := b.GetDsseEnvelope()
	if env == nil {
		return nil, errors.New("the bundle holds a plain signature, not a DSSE in-toto statement (not written by cosign v3 or gantry)")
	}
	st, err := parseStatement(env.GetPayload())
	if err == nil {
		err = st.Validate()
	}
	if err != nil {
		return nil, fmt.Errorf("the bundle's payload is not an in-toto statement: %w", err)
	}
	return st, nil
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// legacyTag is the tag scheme cosign used before bundles (and still writes
// with --new-bundle-format=false): sha256-<hex>.sig and sha256-<hex>.att.
func legacyTag(digest name.Digest, suffix string) name.Tag {
	return digest.Context().Tag(strings.Replace(digest.DigestStr(), ":", "-", 1) + "." + suffix)
}

// verifyLegacy verifies the signatures and attestations cosign stored
// under the legacy tags of digest, with cosign's own verifier. It returns
// what verified and, per predicate type, why the rest did not.
func (t *trust) verifyLegacy(ctx context.Context, digest name.Digest, ropts []remote.Option, nopts []name.Option) ([]verified, map[string][]string) {
	failed := map[string][]string{}
	var ok []verified
	co := cosign.CheckOpts{
		RegistryClientOpts: []ociremote.Option{ociremote.WithRemoteOptions(ropts...), ociremote.WithNameOptions(nopts...)},
		IgnoreTlog:         !t.wantTlog,
		IgnoreSCT:          !t.wantSCT,
	}
	if t.key != nil {
		co.SigVerifier = t.key
	} else {
		co.TrustedMaterial = t.root
		co.UseSignedTimestamps = t.wantTSA && !t.wantTlog
		co.Identities = []cosign.Identity{{Subject: t.san, SubjectRegExp: t.sanRegexp, Issuer: t.issuer}}
	}
	for _, kind := range []string{"sig", "att"} {
		tag := legacyTag(digest, kind)
		if _, err := remote.Head(tag, ropts...); err != nil {
			continue // none of this kind
		}
		var sigs []oci.Signature
		var err error
		if kind == "sig" {
			co.ClaimVerifier = cosign.SimpleClaimVerifier
			sigs, _, err = cosign.VerifyImageSignatures(ctx, digest, &co)
		} else {
			co.ClaimVerifier = cosign.IntotoSubjectClaimVerifier
			sigs, _, err = cosign.VerifyImageAttestations(ctx, digest, &co)
		}
		if err != nil {
			pt := PredicateSignature
			if kind == "att" {
				pt = "legacy attestations"
			}
			failed[pt] = append(failed[pt], "in the legacy tag "+tag.TagStr()+": "+explain(err).Error())
			continue
		}
		for _, sig := range sigs {
			v := verified{PredicateType: PredicateSignature, Signer: t.describes}
			if kind == "att" {
				if v.PredicateType = legacyPredicateType(sig); v.PredicateType == "" {
					continue
				}
			}
			if t.key == nil {
				// cosign checked SAN and issuer; the source repository and
				// ref are Gantry's, checked here.
				c, err := sig.Cert()
				if err == nil && c == nil {
					err = errors.New("no certificate")
				}
				var sum certificate.Summary
				if err == nil {
					sum, err = certificate.SummarizeCertificate(c)
				}
				if err == nil {
					err = t.checkSource(sum)
				}
				if err != nil {
					failed[v.PredicateType] = append(failed[v.PredicateType], "in the legacy tag "+tag.TagStr()+": "+err.Error())
					continue
				}
				v.Signer = sum.SubjectAlternativeName
			} else {
				v.Signer = "key " + t.keyName
			}
			v.Signer += " (legacy ." + kind + " tag)"
			ok = append(ok, v)
		}
	}
	return ok, failed
}

// legacyPredicateType reads the predicate type of a verified legacy
// attestation (a DSSE envelope around an in-toto statement).
func legacyPredicateType(sig oci.Signature) string {
	payload, err := sig.Payload()
	if err != nil {
		return ""
	}
	var env struct {
		Payload []byte `json:"payload"`
	}
	if json.Unmarshal(payload, &env) != nil {
		return ""
	}
	st, err := parseStatement(env.Payload)
	if err != nil {
		return ""
	}
	return st.GetPredicateType()
}
