package rollout

import "testing"

func TestRepositoryOf(t *testing.T) {
	for in, want := range map[string]string{
		"ghcr.io/acme/shop@sha256:aa":        "ghcr.io/acme/shop",
		"ghcr.io/acme/shop:1.2@sha256:aa":    "ghcr.io/acme/shop",
		"localhost:5000/acme/shop:1.2":       "localhost:5000/acme/shop",
		"localhost:5000/acme/shop@sha256:aa": "localhost:5000/acme/shop",
		"sha256:aa":                          "",
		"":                                   "",
	} {
		if got := repositoryOf(in); got != want {
			t.Errorf("repositoryOf(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestSameRepoURL(t *testing.T) {
	for _, c := range []struct {
		a, b string
		same bool
	}{
		{"https://github.com/acme/config.git", "https://github.com/acme/config", true},
		{"acme/config", "https://github.com/acme/config.git", true},
		{"git@github.com:acme/config.git", "https://github.com/Acme/config", true},
		{"https://x-access-token:t@github.com/acme/config", "https://github.com/acme/config/", true},
		{"https://github.com/acme/config", "https://github.com/acme/other", false},
	} {
		if got := sameRepoURL(c.a, c.b); got != c.same {
			t.Errorf("sameRepoURL(%q, %q) = %v", c.a, c.b, got)
		}
	}
}
