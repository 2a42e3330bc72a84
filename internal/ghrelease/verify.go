package ghrelease

import (
	"encoding/json"
	"fmt"
	"os"
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
	// Tlog is whether the signatures are in a transparency log; nil in
	// records written before gantry-sign said so.
	Tlog   *bool `json:"tlog"`
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
	// Doc is whether VERIFY.md is attached: with a release record, or when
	// the assets hold a Sigstore bundle or a checksums file.
	Doc         bool
	Image       string // repo@sha256:… of the index
	Signed      bool   // the record has a sign section, or the inputs say how it was signed
	Mode        string // "keyless" or "key"; "" when nothing is signed
	Flags       string // the identity flags every cosign command takes
	ImageNoTlog bool   // the image's key signatures are in no transparency log
	KeyNote     string // where cosign.pub comes from, in key mode
	KeyAsset    []byte // a public key given as PEM text, attached as cosign.pub
	Identity    string
	Issuer      string
	SourceRepo  string    // owner/name the keyless certificate must name; "" for no check
	NoTlog      []string  // files whose key-signed bundle has no log entry
	SumsSigned  bool      // a checksums file has a bundle
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

// planVerify works out the verification commands from the release record
// (a zero Record when there is none), the assets and the verify-* inputs.
// It fails when a command could not be written correctly: a keyless
// signature without the identity to check, a key signature without the
// key, a bundle without its file or signed the other way.
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
	facts := map[string]bundleFacts{}
	names := map[string]bool{}
	for _, a := range assets {
		names[a.Name] = true
		if strings.HasSuffix(a.Name, bundleSuffix) {
			f, err := readBundle(a.Path)
			if err != nil {
				return p, fmt.Errorf(`input "assets": %s: %w`, a.Name, err)
			}
			bundles = append(bundles, a)
			facts[a.Name] = f
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
			return p, fmt.Errorf(`input "verify-certificate-identity-regexp" is empty, but the image was signed keyless (says %s): set it to the signing workflow's identity, as your deploy verifies it, e.g. %s (or, when Gantry's reusable workflow signed, ^https://github\.com/gantry-ci/gantry/\.github/workflows/build-and-push\.yml@.*$)`, recordName, exampleIdentity(p.Repo))
		case p.Mode != signedWith:
			return p, fmt.Errorf(`the image was signed %s (says %s) but the inputs are for %s verification: set %s instead`, describeMode(signedWith), recordName, p.Mode, fixMode[signedWith])
		}
	}
	for _, b := range bundles {
		f := facts[b.Name]
		switch {
		case p.Mode == "" && f.Signer == "key":
			return p, fmt.Errorf(`input "verify-key" is empty, but the assets include the Sigstore bundle %s, made with a key: set verify-key to the public key (a path in the repository such as cosign.pub, its https:// URL, or the PEM text) so VERIFY.md can name it`, b.Name)
		case p.Mode == "":
			return p, fmt.Errorf(`input "verify-certificate-identity-regexp" is empty, but the assets include the Sigstore bundle %s: set it to the identity of the workflow that ran cosign sign-blob (keyless), e.g. %s, or set verify-key when the files were signed with a key`, b.Name, exampleIdentity(p.Repo))
		case f.Signer != "" && f.Signer != p.Mode:
			return p, fmt.Errorf(`the Sigstore bundle %s was made %s but the inputs are for %s verification: set %s instead`, b.Name, describeMode(f.Signer), p.Mode, fixMode[f.Signer])
		}
	}

	switch p.Mode {
	case "keyless":
		p.Identity, p.Issuer, p.SourceRepo = in.VerifyCertificateIdentityRegexp, strings.TrimSpace(in.VerifyCertificateOIDCIssuer), s.sourceRepo
		// Always quoted, as people are used to reading them.
		p.Flags = "--certificate-identity-regexp " + singleQuote(p.Identity) + " --certificate-oidc-issuer " + singleQuote(p.Issuer)
		if p.SourceRepo != "" {
			p.Flags += " --certificate-github-workflow-repository " + shellQuote(p.SourceRepo)
		}
	case "key":
		ref, note, pem := keyRef(in.VerifyKey, p.Repo, s.tag, serverURL)
		p.Flags, p.KeyNote, p.KeyAsset = "--key "+shellQuote(ref), note, pem
	}

	p.Signed = sign != nil || p.Mode != ""
	// Image commands: a key-signed image gantry-sign recorded in no
	// transparency log (key mode's default) needs cosign told so, or cosign
	// looks for the log entry and fails.
	imageFlags := p.Flags
	if p.Mode == "key" && sign != nil && sign.Tlog != nil && !*sign.Tlog {
		imageFlags += " --insecure-ignore-tlog=true"
		p.ImageNoTlog = true
	}
	if p.Signed && p.Image != "" {
		p.Sign = append(p.Sign, command{"the image's signature", "cosign verify " + p.Image + " " + imageFlags})
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
				p.Attest = append(p.Attest, command{what, "cosign verify-attestation " + repo + "@" + sd.Digest + " --type " + ct.typ + " " + imageFlags})
			}
		}
	}
	for _, b := range bundles {
		file := strings.TrimSuffix(b.Name, bundleSuffix)
		if !names[file] {
			return p, fmt.Errorf(`input "assets": the Sigstore bundle %s signs %s, which is not among the assets: add %s (or drop the bundle)`, b.Name, file, file)
		}
		line := "cosign verify-blob " + shellQuote(file) + " --bundle " + shellQuote(b.Name) + " " + p.Flags
		if f := facts[b.Name]; p.Mode == "key" && f.Signer != "" && !f.Tlog {
			// cosign otherwise looks for the log entry the bundle lacks and
			// fails; the key is all there is to check.
			line += " --insecure-ignore-tlog=true"
			p.NoTlog = append(p.NoTlog, file)
		}
		p.Blobs = append(p.Blobs, command{file, line})
	}
	for _, a := range assets {
		if isChecksums(a.Name) {
			p.SumsSigned = p.SumsSigned || names[a.Name+bundleSuffix]
			p.Checksums = append(p.Checksums, command{"the downloaded files against " + a.Name, "sha256sum --ignore-missing --check " + shellQuote(a.Name)})
		}
	}
	if len(p.Sign)+len(p.Attest)+len(p.Blobs) == 0 {
		// No command takes the key: attaching or explaining it would only
		// puzzle a reader.
		p.KeyNote, p.KeyAsset = "", nil
	}
	p.Doc = recordName != "" || len(p.Blobs)+len(p.Checksums) > 0
	return p, nil
}

// fixMode says which inputs verify a signature made one way.
var fixMode = map[string]string{
	"key":     `verify-key (and unset verify-certificate-identity-regexp)`,
	"keyless": `verify-certificate-identity-regexp (and unset verify-key)`,
}

func exampleIdentity(repo string) string {
	return `^https://github\.com/` + regexpQuoteDots(repo) + `/\.github/workflows/release\.yml@refs/tags/v.*$`
}

// bundleFacts is what VERIFY.md needs to know of a Sigstore bundle.
type bundleFacts struct {
	Signer string // "key", "keyless", or "" when the bundle does not say
	Tlog   bool   // a transparency log entry is in the bundle
}

// readBundle reads how a Sigstore bundle was signed: with a key (a
// public-key hint) or keyless (a certificate), and whether it holds a
// transparency log entry. It knows the bundle format cosign sign-blob
// --bundle writes (v0.1 to v0.3) and cosign's older one
// (--new-bundle-format=false).
func readBundle(path string) (bundleFacts, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return bundleFacts{}, err
	}
	var v struct {
		VerificationMaterial *struct {
			PublicKey            json.RawMessage   `json:"publicKey"`
			Certificate          json.RawMessage   `json:"certificate"`
			X509CertificateChain json.RawMessage   `json:"x509CertificateChain"`
			TlogEntries          []json.RawMessage `json:"tlogEntries"`
		} `json:"verificationMaterial"`
		Base64Signature string          `json:"base64Signature"`
		Cert            string          `json:"cert"`
		RekorBundle     json.RawMessage `json:"rekorBundle"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return bundleFacts{}, fmt.Errorf("not a Sigstore bundle (%v): it should be the file cosign sign-blob --bundle writes", err)
	}
	set := func(m json.RawMessage) bool { return len(m) > 0 && string(m) != "null" }
	var f bundleFacts
	switch vm := v.VerificationMaterial; {
	case vm != nil:
		switch {
		case set(vm.Certificate) || set(vm.X509CertificateChain):
			f.Signer = "keyless"
		case set(vm.PublicKey):
			f.Signer = "key"
		}
		f.Tlog = len(vm.TlogEntries) > 0
	case v.Base64Signature != "":
		f.Signer = "key"
		if v.Cert != "" {
			f.Signer = "keyless"
		}
		f.Tlog = set(v.RekorBundle)
	}
	return f, nil
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
	if p.hasKeyless() && p.SourceRepo != "" {
		fmt.Fprintf(&b, "Every repository that calls a reusable workflow signs with that workflow's identity, so the identity alone does not tie a signature to this project: `--certificate-github-workflow-repository %s` does.\n\n", p.SourceRepo)
	}
	if p.KeyNote != "" {
		b.WriteString(p.KeyNote + "\n\n")
	}
	if len(cmds) > 0 {
		fmt.Fprintf(&b, "[`%s`](%s) says what each command checks.\n", VerifyFile, p.downloadURL(VerifyFile))
	}
	return b.String()
}

// hasKeyless reports whether a cosign command checks a keyless identity.
func (p verifyPlan) hasKeyless() bool {
	return p.Mode == "keyless" && len(p.Sign)+len(p.Attest)+len(p.Blobs) > 0
}

// keylessText says what a keyless certificate must name.
func (p verifyPlan) keylessText(what string) string {
	t := fmt.Sprintf("%s keyless: its certificate must name a workflow matching `%s`, as issued to GitHub Actions by `%s`", what, p.Identity, p.Issuer)
	if p.SourceRepo == "" {
		return t + ".\n\n"
	}
	return t + fmt.Sprintf(", for a run in the repository `%s` (`--certificate-github-workflow-repository`, which cosign compares with the certificate's GitHub Workflow Repository extension). Every repository that calls a reusable workflow signs with that workflow's identity, so the identity alone does not tie a signature to this project; the repository check does.\n\n", p.SourceRepo)
}

func (p verifyPlan) downloadURL(name string) string {
	return fmt.Sprintf("%s/%s/releases/download/%s/%s", strings.TrimSuffix(p.ServerURL, "/"), p.Repo, p.Tag, name)
}

// markdown is VERIFY.md.
func (p verifyPlan) markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "# Verifying %s %s\n\n", p.Repo, p.Tag)
	if len(p.commands()) > 0 {
		b.WriteString("Every command below exits non-zero when a check fails.")
		if len(p.commands()) > len(p.Checksums) {
			b.WriteString(" The cosign commands need\n[cosign](https://docs.sigstore.dev/cosign/system_config/installation/) v3.")
		}
		b.WriteString("\n\n")
	}
	if len(p.Blobs)+len(p.Checksums) > 0 {
		b.WriteString("Download the release's files into an empty directory first:\n\n")
		fmt.Fprintf(&b, "```sh\ngh release download %s --repo %s\n```\n\n", shellQuote(p.Tag), p.Repo)
		also := []string{"the files you want"}
		if len(p.Blobs) > 0 {
			also = append(also, "their `.sigstore.json` bundles")
		}
		if len(p.Checksums) > 0 && p.SumsSigned {
			also = append(also, "the checksums file with its bundle")
		} else if len(p.Checksums) > 0 {
			also = append(also, "the checksums file")
		}
		fmt.Fprintf(&b, "To fetch only what you need, add one `--pattern NAME` per file: %s.\n\n", joinAnd(also))
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
				b.WriteString(p.keylessText("The signature is"))
			case "key":
				b.WriteString("The signature was made with the project's key.")
				if p.ImageNoTlog {
					b.WriteString(" It is not in a transparency log (gantry-sign records one only when asked to in key mode), so the commands skip that check with `--insecure-ignore-tlog=true`, and cosign warns that they do: the key alone vouches for the image.")
				}
				b.WriteString("\n\n")
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
		switch {
		case p.Mode == "keyless" && len(p.Sign) == 0:
			b.WriteString(p.keylessText("Each signature is"))
		case p.Mode == "keyless":
			b.WriteString("The signatures are keyless, with the identity the image's signature has.\n\n")
		case p.Mode == "key":
			b.WriteString("The signatures were made with the project's key.")
			if len(p.NoTlog) > 0 {
				files := make([]string, len(p.NoTlog))
				for i, f := range p.NoTlog {
					files[i] = "`" + f + "`"
				}
				fmt.Fprintf(&b, " The signature of %s is not in a transparency log (its bundle holds no log entry), so its command skips that check with `--insecure-ignore-tlog=true`, and cosign warns that it does: the key alone vouches for the file.", strings.Join(files, ", "))
			}
			b.WriteString("\n\n")
		}
		writeCommands(&b, p.Blobs)
	}
	if len(p.Checksums) > 0 {
		b.WriteString("## Checksums\n\n`--ignore-missing` checks the files you downloaded and skips the others; a file that is listed and differs fails.")
		if p.SumsSigned {
			b.WriteString(" Check the checksums file's own signature above first: then a matching sum is the one that was signed.")
		}
		b.WriteString("\n\n")
		writeCommands(&b, p.Checksums)
	}
	if p.ReleaseFile != "" {
		fmt.Fprintf(&b, "## The release record\n\n`%s` is Gantry's record of this image's way through the pipeline: digests per platform, tags, source commit, and what each stage did.\n", p.ReleaseFile)
	}
	return strings.TrimRight(b.String(), "\n") + "\n"
}

// joinAnd joins a list as a sentence does: "a", "a and b", "a, b and c".
func joinAnd(l []string) string {
	if len(l) < 2 {
		return strings.Join(l, "")
	}
	return strings.Join(l[:len(l)-1], ", ") + " and " + l[len(l)-1]
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
