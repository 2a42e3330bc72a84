package signing

import (
	"regexp"
	"strings"
	"testing"

	"github.com/sigstore/sigstore-go/pkg/fulcio/certificate"
)

// TestRepositoryURI: the forms verify-source-repository accepts, and the
// exact string each is compared as.
func TestRepositoryURI(t *testing.T) {
	for in, want := range map[string]string{
		"acme/app":                         "https://github.com/acme/app",
		" acme/Prompt-Builder ":            "https://github.com/acme/Prompt-Builder",
		"https://github.com/acme/app":      "https://github.com/acme/app",
		"https://github.com/acme/app/":     "https://github.com/acme/app",
		"https://github.com/acme/app.git":  "https://github.com/acme/app",
		"https://ghe.example.com/acme/app": "https://ghe.example.com/acme/app",
		"acme/my_app.v2":                   "https://github.com/acme/my_app.v2",
		"acme":                             "",
		"acme/app/extra":                   "",
		"http://github.com/acme/app":       "",
		"github.com/acme/app":              "",
		"https://github.com/acme":          "",
		"https://github.com/acme/app?x=1":  "",
		"acme/..":                          "",
		"https://user@github.com/acme/app": "",
		"":                                 "",
	} {
		got, err := SourceRepositoryURI(in)
		if want == "" {
			if err == nil || !strings.Contains(err.Error(), `input "verify-source-repository"`) {
				t.Errorf("SourceRepositoryURI(%q) = %q, %v; want an error naming the input", in, got, err)
			}
			continue
		}
		if err != nil || got != want {
			t.Errorf("SourceRepositoryURI(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

// TestCheckSource covers a certificate without the extensions (not issued
// to a GitHub Actions run), which the local Fulcio never issues.
func TestCheckSource(t *testing.T) {
	tr := &trust{sourceRepo: "https://github.com/acme/app", sourceRef: regexp.MustCompile(`^refs/tags/`)}
	for _, tc := range []struct {
		name string
		ext  certificate.Extensions
		want string
	}{
		{"no extensions", certificate.Extensions{}, "the certificate names no source repository (no Source Repository URI extension, OID 1.3.6.1.4.1.57264.1.12"},
		{"another repository", certificate.Extensions{SourceRepositoryURI: "https://github.com/acme/other", SourceRepositoryRef: "refs/tags/v1"}, "issued to a run of https://github.com/acme/other, but verify-source-repository requires https://github.com/acme/app"},
		{"no ref", certificate.Extensions{SourceRepositoryURI: "https://github.com/acme/app"}, "names no git ref (no Source Repository Ref extension, OID 1.3.6.1.4.1.57264.1.14)"},
		{"ref", certificate.Extensions{SourceRepositoryURI: "https://github.com/acme/app", SourceRepositoryRef: "refs/heads/dev"}, `run for refs/heads/dev, which does not match verify-source-ref-regexp "^refs/tags/"`},
		{"passes", certificate.Extensions{SourceRepositoryURI: "https://github.com/acme/app", SourceRepositoryRef: "refs/tags/v1"}, ""},
	} {
		err := tr.checkSource(certificate.Summary{SubjectAlternativeName: "x", Extensions: tc.ext})
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
	if err := (&trust{}).checkSource(certificate.Summary{}); err != nil {
		t.Errorf("no source policy: %v", err)
	}
}
