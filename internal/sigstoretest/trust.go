package sigstoretest

import (
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"time"
)

// The files below follow the protobuf-specs messages
// dev.sigstore.trustroot.v1.TrustedRoot and SigningConfig (v0.2) in their
// JSON form, which cosign and sigstore-go read.
const (
	trustedRootMediaType   = "application/vnd.dev.sigstore.trustedroot+json;version=0.1"
	signingConfigMediaType = "application/vnd.dev.sigstore.signingconfig.v0.2+json"
)

type validFor struct {
	Start string `json:"start"`
	End   string `json:"end,omitempty"`
}

type rawBytes struct {
	RawBytes []byte `json:"rawBytes"` // base64 in JSON, as protobuf's bytes
}

type certChain struct {
	Certificates []rawBytes `json:"certificates"`
}

type distinguishedName struct {
	Organization string `json:"organization,omitempty"`
	CommonName   string `json:"commonName,omitempty"`
}

type certificateAuthority struct {
	Subject   distinguishedName `json:"subject"`
	URI       string            `json:"uri,omitempty"`
	CertChain certChain         `json:"certChain"`
	ValidFor  validFor          `json:"validFor"`
}

type publicKey struct {
	RawBytes   []byte   `json:"rawBytes"`
	KeyDetails string   `json:"keyDetails"`
	ValidFor   validFor `json:"validFor"`
}

type transparencyLog struct {
	BaseURL       string    `json:"baseUrl"`
	HashAlgorithm string    `json:"hashAlgorithm"`
	PublicKey     publicKey `json:"publicKey"`
	LogID         struct {
		KeyID []byte `json:"keyId"`
	} `json:"logId"`
}

type trustedRoot struct {
	MediaType              string                 `json:"mediaType"`
	Tlogs                  []transparencyLog      `json:"tlogs"`
	CertificateAuthorities []certificateAuthority `json:"certificateAuthorities"`
	Ctlogs                 []transparencyLog      `json:"ctlogs"`
	TimestampAuthorities   []certificateAuthority `json:"timestampAuthorities"`
}

type service struct {
	URL             string   `json:"url"`
	MajorAPIVersion uint32   `json:"majorApiVersion"`
	ValidFor        validFor `json:"validFor"`
	Operator        string   `json:"operator"`
}

type serviceConfig struct {
	Selector string `json:"selector,omitempty"`
}

type signingConfig struct {
	MediaType       string        `json:"mediaType"`
	CAURLs          []service     `json:"caUrls"`
	OIDCURLs        []service     `json:"oidcUrls"`
	RekorTlogURLs   []service     `json:"rekorTlogUrls"`
	RekorTlogConfig serviceConfig `json:"rekorTlogConfig"`
	TSAURLs         []service     `json:"tsaUrls"`
	TSAConfig       serviceConfig `json:"tsaConfig"`
}

// trustInputs is what the trusted root and signing config describe; the
// Rekor and TSA parts are empty without a transparency log.
type trustInputs struct {
	since       time.Time // start of every validity period
	fulcioURL   string
	fulcioChain []*x509.Certificate // root last
	rekorURL    string
	rekorKey    ed25519.PublicKey
	tsaURL      string              // the timestamp endpoint
	tsaChain    []*x509.Certificate // leaf first, root last
}

// operator names the services in the signing config.
const operator = "gantry-sigstoretest"

func chainOf(certs []*x509.Certificate) certChain {
	var c certChain
	for _, cert := range certs {
		c.Certificates = append(c.Certificates, rawBytes{RawBytes: cert.Raw})
	}
	return c
}

func subjectOf(cert *x509.Certificate) distinguishedName {
	dn := distinguishedName{CommonName: cert.Subject.CommonName}
	if len(cert.Subject.Organization) > 0 {
		dn.Organization = cert.Subject.Organization[0]
	}
	return dn
}

func rfc3339(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// rekorLogID is the id of a Rekor v2 log in a trusted root and in its
// entries: the full SHA-256 of the checkpoint key's signed-note key hash
// input (C2SP signed-note, algorithm 0x01 for ed25519).
func rekorLogID(origin string, key ed25519.PublicKey) []byte {
	h := sha256.New()
	h.Write([]byte(origin + "\n"))
	h.Write([]byte{0x01})
	h.Write(key)
	return h.Sum(nil)
}

// trustedRootJSON is the trusted root: Fulcio's chain, and with a log the
// Rekor key and the TSA's chain. There is no CT log: certificates carry no
// SCT.
func trustedRootJSON(in trustInputs) ([]byte, error) {
	root := in.fulcioChain[len(in.fulcioChain)-1]
	tr := trustedRoot{
		MediaType: trustedRootMediaType,
		Tlogs:     []transparencyLog{},
		CertificateAuthorities: []certificateAuthority{{
			Subject:   subjectOf(root),
			URI:       in.fulcioURL,
			CertChain: chainOf(in.fulcioChain),
			ValidFor:  validFor{Start: rfc3339(root.NotBefore)},
		}},
		Ctlogs:               []transparencyLog{},
		TimestampAuthorities: []certificateAuthority{},
	}
	if in.rekorURL != "" {
		der, err := x509.MarshalPKIXPublicKey(in.rekorKey)
		if err != nil {
			return nil, err
		}
		tl := transparencyLog{
			BaseURL:       in.rekorURL,
			HashAlgorithm: "SHA2_256",
			PublicKey: publicKey{
				RawBytes:   der,
				KeyDetails: "PKIX_ED25519",
				ValidFor:   validFor{Start: rfc3339(in.since)},
			},
		}
		tl.LogID.KeyID = rekorLogID(rekorOrigin, in.rekorKey)
		tr.Tlogs = append(tr.Tlogs, tl)
	}
	if in.tsaURL != "" {
		tsaRoot := in.tsaChain[len(in.tsaChain)-1]
		tr.TimestampAuthorities = append(tr.TimestampAuthorities, certificateAuthority{
			Subject:   subjectOf(tsaRoot),
			URI:       in.tsaURL,
			CertChain: chainOf(in.tsaChain),
			ValidFor:  validFor{Start: rfc3339(tsaRoot.NotBefore)},
		})
	}
	return json.MarshalIndent(tr, "", "  ")
}

// signingConfigJSON is the signing config: Fulcio, and with a log Rekor
// (API v2) and the TSA.
func signingConfigJSON(in trustInputs) ([]byte, error) {
	since := validFor{Start: rfc3339(in.since)}
	sc := signingConfig{
		MediaType:     signingConfigMediaType,
		CAURLs:        []service{{URL: in.fulcioURL, MajorAPIVersion: 1, ValidFor: since, Operator: operator}},
		OIDCURLs:      []service{},
		RekorTlogURLs: []service{},
		TSAURLs:       []service{},
	}
	if in.rekorURL != "" {
		sc.RekorTlogURLs = append(sc.RekorTlogURLs, service{URL: in.rekorURL, MajorAPIVersion: 2, ValidFor: since, Operator: operator})
		sc.RekorTlogConfig.Selector = "ANY"
	}
	if in.tsaURL != "" {
		sc.TSAURLs = append(sc.TSAURLs, service{URL: in.tsaURL, MajorAPIVersion: 1, ValidFor: since, Operator: operator})
		sc.TSAConfig.Selector = "ANY"
	}
	return json.MarshalIndent(sc, "", "  ")
}
