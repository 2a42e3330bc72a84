package ghrelease

import (
	"encoding/json"
	"fmt"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/gantry-ci/gantry/internal/release"
)

// VerifyFile is the name of the asset with the verification commands.
const VerifyFile = "VERIFY.md"

// bundleSuffix marks a Sigstore bundle of a release file: app.tar.gz is
// signed by app.tar.gz.sigstore.json (cosign sign-blob --bundle).
const bundleSuffix = ".sigstore.json"

// signRecord is the "sign" section gantry-sign writes into the release
// record (internal/signing, finish): who signed, and what was signed and
// attested on which digest. It is read here as JSON rather than imported,
// so this stage does not link the signing libraries.
type signRecord struct {
	Mode   string `json:"mode"`
	Signer string `json:"signer"` // "key SHA256:…" or "keyless (Fulcio …)"
	Signed []struct {
		Digest   string   `json:"digest"`
		Platform string   `json:"platform"` // "" for the index
		Types    []string `json:"types"`    // signature, sbom/spdx, sbom/cyclonedx, provenance, scan
	} `json:"signed"`
}

// cosignTypes maps the record's attestation kinds to cosign's --type.
var cosignTypes = []struct{ kind, typ, what string }{
	{"sbom/spdx", "spdxjson", "SBOM (SPDX)"},
	{"sbom/cyclonedx", "cyclonedx", "SBOM (CycloneDX)"},
	{"provenance", "slsaprovenance1", "SLSA provenance"},
	{"scan", "vuln", "vulnerability scan"},
}

// command is one verification command and what it proves.
type command struct {
	What string
	Line string
}

// verifyPlan is everything VERIFY.md and the notes' Verify section say.
type verifyPlan struct {
	Image       string // repo@sha256:… of the index
	Signed      bool   // the record has a sign section, or the inputs say how it was signed
	Mode        string // "keyless" or "key"; "" when nothing is signed
	Flags       string // the identity flags every cosign command takes
	KeyNote     string // where cosign.pub comes from, in key mode
	KeyAsset    []byte // a public key given as PEM text, attached as cosign.pub
	Identity    string
	Issuer      string
	Sign        []command // cosign verify of the image
	Attest      []command
	Blobs       []command
	Checksums   []command
	NoSignNote  string
	Repo, Tag   string
	ServerURL   string
	Platforms   []release.Platform
	ReleaseFile string // the record's asset name
}

// planVerify works out the verification commands from the release record,
// the assets and the verify-* inputs. It fails when a command could not be
// written correctly: a keyless signature without the identity to check, a
// key signature without the key, a bundle without its file.
func planVerify(in *Inputs, s settings, rec release.Record, recordName string, assets []localAsset, serverURL string) (verifyPlan, error) {
	p := verifyPlan{Image: rec.Image, Repo: s.owner + "/" + s.repo, Tag: s.tag, ServerURL: serverURL, Platforms: rec.Platforms, ReleaseFile: recordName}
	var sign *signRecord
	if raw, ok := rec.Stages["sign"]; ok {
		sign = &signRecord{}
		if err := json.Unmarshal(raw, sign); err != nil {
			return p, fmt.Errorf(`input "release-file": the record's sign section is not what gantry-sign writes: %w`, err)
		}
	}
	var bundles []localAsset
	names := map[string]bool{}
	for _, a := range assets {
		names[a.Name] = true
		if strings.HasSuffix(a.Name, bundleSuffix) {
			bundles = append(bundles, a)
		}
	}

	switch {
	case in.VerifyKey != "":
		p.Mode = "key"
	case in.VerifyCertificateIdentityRegexp != "":
		p.Mode = "keyless"
	}
	if sign != nil {
		signedWith := "keyless"
		if strings.HasPrefix(sign.Signer, "key") && !strings.HasPrefix(sign.Signer, "keyless") {
			signedWith = "key"
		}
		switch {
		case p.Mode == "" && signedWith == "key":
			return p, fmt.Errorf(`input "verify-key" is empty, but the image was signed with a key (%s, says %s): set verify-key to the public key (a path in the repository such as cosign.pub, or its https:// URL) so VERIFY.md can name it`, sign.Signer, recordName)
		case p.Mode == "":
			return p, fmt.Errorf(`input "verify-certificate-identity-regexp" is empty, but the image was signed keyless (says %s): set it to the signing workflow's identity, as your deploy verifies it, e.g. ^https://github\.com/%s/\.github/workflows/release\.yml@refs/tags/v.*$ (or, when Gantry's reusable workflow signed, ^https://github\.com/gantry-ci/gantry/\.github/workflows/build-and-push\.yml@.*$)`, recordName, regexpQuoteDots(p.Repo))
		case p.Mode != signedWith:
			return p, fmt.Errorf(`the image was signed %s (says %s) but the inputs are for %s verification: set %s instead`, describeMode(signedWith), recordName, describeMode(p.Mode), map[string]string{"key": `verify-key (and unset verify-certificate-identity-regexp)`, "keyless": `verify-certificate-identity-regexp (and unset verify-key)`}[signedWith])
		}
	}
	if p.Mode == "" && len(bundles) > 0 {
		return p, fmt.Errorf(`inputs "verify-certificate-identity-regexp" and "verify-key" are empty, but the assets include the Sigstore bundle %s: set the identity regexp of the workflow that ran cosign sign-blob (keyless), or verify-key (key)`, bundles[0].Name)
	}

	switch p.Mode {
	case "keyless":
		p.Identity, p.Issuer = in.VerifyCertificateIdentityRegexp, strings.TrimSpace(in.VerifyCertificateOIDCIssuer)
		// Always quoted, as people are used to reading them.
		p.Flags = "--certificate-identity-regexp " + singleQuote(p.Identity) + " --certificate-oidc-issuer " + singleQuote(p.Issuer)
	case "key":
		ref, note, pem := keyRef(in.VerifyKey, p.Repo, s.tag, serverURL)
		p.Flags, p.KeyNote, p.KeyAsset = "--key "+shellQuote(ref), note, pem
	}

	p.Signed = sign != nil || p.Mode != ""
	if p.Signed && p.Image != "" {
		p.Sign = append(p.Sign, command{"the image's signature", "cosign verify " + p.Image + " " + p.Flags})
	}
	if sign == nil && p.Image != "" {
		p.NoSignNote = fmt.Sprintf("%s has no sign section: gantry-sign did not record a signature of this image.", recordName)
		if p.Signed {
			p.NoSignNote = fmt.Sprintf("%s has no sign section, so which attestations exist is not known; the signature check below uses the verify-* inputs.", recordName)
		}
	}
	if sign != nil && p.Image != "" {
		repo := rec.Repository
		if repo == "" {
			repo, _, _ = strings.Cut(rec.Image, "@")
		}
		indexProv := false
		for _, sd := range sign.Signed {
			if sd.Platform == "" && slices.Contains(sd.Types, "provenance") {
				indexProv = true
			}
		}
		for _, ct := range cosignTypes {
			for _, sd := range sign.Signed {
				if !slices.Contains(sd.Types, ct.kind) || sd.Digest == "" {
					continue
				}
				if ct.kind == "provenance" && sd.Platform != "" && indexProv {
					continue // the index's provenance covers the run
				}
				what := ct.what + " of the image"
				if sd.Platform != "" {
					what = ct.what + " of " + sd.Platform
				}
				p.Attest = append(p.Attest, command{what, "cosign verify-attestation " + repo + "@" + sd.Digest + " --type " + ct.typ + " " + p.Flags})
			}
		}
	}
	for _, b := range bundles {
		file := strings.TrimSuffix(b.Name, bundleSuffix)
		if !names[file] {
			return p, fmt.Errorf(`input "assets": the Sigstore bundle %s signs %s, which is not among the assets: add %s (or drop the bundle)`, b.Name, file, file)
		}
		p.Blobs = append(p.Blobs, command{file, "cosign verify-blob " + shellQuote(file) + " --bundle " + shellQuote(b.Name) + " " + p.Flags})
	}
	for _, a := range assets {
		if isChecksums(a.Name) {
			p.Checksums = append(p.Checksums, command{"the downloaded files against " + a.Name, "sha256sum --check --ignore-missing " + shellQuote(a.Name)})
		}
	}
	return p, nil
}

func describeMode(m string) string {
	if m == "key" {
		return "with a key"
	}
	return "keyless"
}

func regexpQuoteDots(s string) string { return strings.ReplaceAll(s, ".", `\.`) }

// keyRef turns verify-key into what cosign --key takes, a note on where
// the key comes from, and the key itself when it was given as PEM text.
func keyRef(v, repo, tag, serverURL string) (ref, note string, pem []byte) {
	v = strings.TrimSpace(v)
	switch {
	case strings.HasPrefix(v, "-----BEGIN"):
		return "cosign.pub", "`cosign.pub` is attached to this release. Compare it with the public key the project publishes elsewhere before trusting it: a key that travels with the files it verifies proves only that they were not altered in transit.", []byte(v + "\n")
	case strings.Contains(v, "://"):
		return v, "", nil
	}
	clean := path.Clean(filepath.ToSlash(v))
	if path.IsAbs(clean) || strings.HasPrefix(clean, "../") {
		return v, fmt.Sprintf("`%s` is the project's public key.", v), nil
	}
	name := path.Base(clean)
	raw := fmt.Sprintf("%s/%s/raw/%s/%s", strings.TrimSuffix(serverURL, "/"), repo, tag, clean)
	return name, fmt.Sprintf("`%s` is `%s` in the repository at %s:\n\n```sh\ncurl -fsSLo %s %s\n```", name, clean, tag, shellQuote(name), raw), nil
}

// shellQuote quotes s for a POSIX shell: as is when it is plainly safe,
// else in single quotes. A regexp is always quoted, being full of
// characters a shell would expand.
func shellQuote(s string) string {
	safe := s != ""
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("-_./:=@+,%", c)) {
			safe = false
			break
		}
	}
	if safe {
		return s
	}
	return singleQuote(s)
}

func singleQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// commands lists every command in order.
func (p verifyPlan) commands() []command {
	var all []command
	for _, l := range [][]command{p.Sign, p.Attest, p.Blobs, p.Checksums} {
		all = append(all, l...)
	}
	return all
}

// notesSection is the Verify section of the release notes.
func (p verifyPlan) notesSection() string {
	cmds := p.commands()
	if len(cmds) == 0 && p.NoSignNote == "" {
		return ""
	}
	var b strings.Builder
	b.WriteString("## Verify\n\n")
	if p.NoSignNote != "" {
		b.WriteString(p.NoSignNote + "\n\n")
	}
	if len(cmds) > 0 {
		b.WriteString("```sh\n")
		for _, c := range cmds {
			b.WriteString(c.Line + "\n")
		}
		b.WriteString("```\n\n")
	}
	if p.KeyNote != "" {
		b.WriteString(p.KeyNote + "\n\n")
	}
	if len(cmds) > 0 {
		fmt.Fprintf(&b, "[`%s`](%s) says what each command checks.\n", VerifyFile, p.downloadURL(VerifyFile))
	}
	return b.String()
}

func (p verifyPlan) downloadURL(name string) string {
	return fmt.Sprintf("%s/%s/releases/download/%s/%s", strings.TrimSuffix(p.ServerURL, "/"), p.Repo, p.Tag, name)
}

// markdown is VERIFY.md.
func (p verifyPlan) markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "# Verifying %s %s\n\n", p.Repo, p.Tag)
	if len(p.commands()) > 0 {
		b.WriteString("Every command below exits non-zero when a check fails. The cosign commands need\n[cosign](https://docs.sigstore.dev/cosign/system_config/installation/) v3.\n\n")
	}
	if len(p.Blobs)+len(p.Checksums) > 0 {
		b.WriteString("Download the release's files into an empty directory first:\n\n")
		fmt.Fprintf(&b, "```sh\ngh release download %s --repo %s\n```\n\n", shellQuote(p.Tag), p.Repo)
	}
	if p.KeyNote != "" {
		b.WriteString("## The public key\n\n" + p.KeyNote + "\n\n")
	}
	if p.Image != "" {
		b.WriteString("## The image\n\n")
		fmt.Fprintf(&b, "The release is the image `%s`; pull and deploy it by this digest, never by tag.\n\n", p.Image)
		if p.NoSignNote != "" {
			b.WriteString(p.NoSignNote + "\n\n")
		}
		if len(p.Sign) > 0 {
			switch p.Mode {
			case "keyless":
				fmt.Fprintf(&b, "The signature is keyless: its certificate must name a workflow matching `%s`, as issued to GitHub Actions by `%s`.\n\n", p.Identity, p.Issuer)
			case "key":
				b.WriteString("The signature was made with the project's key.\n\n")
			}
			writeCommands(&b, p.Sign)
		}
		if len(p.Attest) > 0 {
			b.WriteString("### Attestations\n\nEach one is signed the same way and attached to the digest it describes.\n\n")
			writeCommands(&b, p.Attest)
		}
		if len(p.Platforms) > 0 {
			b.WriteString("| platform | digest |\n|---|---|\n")
			for _, pl := range p.Platforms {
				fmt.Fprintf(&b, "| %s | `%s` |\n", pl.Platform, pl.Digest)
			}
			b.WriteString("\n")
		}
	}
	if len(p.Blobs) > 0 {
		b.WriteString("## Signed files\n\nEach file is checked against its Sigstore bundle (`<file>.sigstore.json`).\n\n")
		writeCommands(&b, p.Blobs)
	}
	if len(p.Checksums) > 0 {
		b.WriteString("## Checksums\n\n`--ignore-missing` checks the files you downloaded and skips the others.\n\n")
		writeCommands(&b, p.Checksums)
	}
	if p.ReleaseFile != "" {
		fmt.Fprintf(&b, "## The release record\n\n`%s` is Gantry's record of this image's way through the pipeline: digests per platform, tags, source commit, and what each stage did.\n", p.ReleaseFile)
	}
	return b.String()
}

func writeCommands(b *strings.Builder, cmds []command) {
	b.WriteString("```sh\n")
	for i, c := range cmds {
		if i > 0 {
			b.WriteString("\n")
		}
		fmt.Fprintf(b, "# %s\n%s\n", c.What, c.Line)
	}
	b.WriteString("```\n\n")
}
