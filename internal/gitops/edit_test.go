package gitops

import (
	"strings"
	"testing"
)

const (
	digA = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	digB = "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
)

func TestParseImage(t *testing.T) {
	for _, tc := range []struct{ in, repo, err string }{
		{"ghcr.io/acme/app@" + digA, "ghcr.io/acme/app", ""},
		{"ghcr.io/acme/app:1.2@" + digA, "ghcr.io/acme/app", ""},
		{"localhost:5000/app@" + digA, "localhost:5000/app", ""},
		{"ghcr.io/acme/app:1.2", "", `input "image"`},
		{"ghcr.io/acme/app@sha256:abc", "", "not a sha256 digest"},
	} {
		img, err := parseImage(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("parseImage(%q) error = %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || img.repository != tc.repo || img.digest != digA {
			t.Errorf("parseImage(%q) = %+v, %v", tc.in, img, err)
		}
	}
}

func TestParseRemote(t *testing.T) {
	for _, tc := range []struct{ in, url, owner, name, commit, err string }{
		{"acme/config", "https://github.com/acme/config.git", "acme", "config", "https://github.com/acme/config/commit/abc", ""},
		{"https://github.com/acme/config.git", "https://github.com/acme/config.git", "acme", "config", "https://github.com/acme/config/commit/abc", ""},
		{"https://ghe.example.com/acme/config", "https://ghe.example.com/acme/config", "acme", "config", "https://ghe.example.com/acme/config/commit/abc", ""},
		{"git@github.com:acme/config.git", "git@github.com:acme/config.git", "acme", "config", "https://github.com/acme/config/commit/abc", ""},
		{"ssh://git@host:2222/acme/config.git", "ssh://git@host:2222/acme/config.git", "acme", "config", "https://host/acme/config/commit/abc", ""},
		{"http://127.0.0.1:9/config.git", "http://127.0.0.1:9/config.git", "", "", "", ""},
		{"https://x-access-token:ghp_secret@github.com/acme/config.git", "", "", "", "", "carries credentials"},
		{"ftp://host/acme/config", "", "", "", "", "not supported"},
		{"", "", "", "", "", "is empty"},
	} {
		r, err := parseRemote(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) || strings.Contains(err.Error(), "ghp_secret") {
				t.Errorf("parseRemote(%q) error = %v, want %q without the secret", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || r.url != tc.url || r.owner != tc.owner || r.name != tc.name || r.commitURL("abc") != tc.commit {
			t.Errorf("parseRemote(%q) = %+v (%s), %v", tc.in, r, r.commitURL("abc"), err)
		}
	}
}

func TestAuthInputs(t *testing.T) {
	r, _ := parseRemote("git@github.com:acme/config.git")
	if _, err := r.auth(Repo{}); err == nil || !strings.Contains(err.Error(), `"gitops-ssh-key"`) {
		t.Errorf("ssh without key: %v", err)
	}
	if _, err := r.auth(Repo{SSHKey: "-----BEGIN OPENSSH PRIVATE KEY-----"}); err == nil || !strings.Contains(err.Error(), `input "gitops-ssh-key" needs "gitops-known-hosts"`) {
		t.Errorf("ssh without known hosts: %v", err)
	}
	if _, err := r.auth(Repo{SSHKey: "not a key", KnownHosts: "github.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"}); err == nil || !strings.Contains(err.Error(), `input "gitops-ssh-key" is not a usable private key`) {
		t.Errorf("bad key: %v", err)
	}
	h, _ := parseRemote("acme/config")
	if _, err := h.auth(Repo{SSHKey: "k"}); err == nil || !strings.Contains(err.Error(), "not an ssh URL") {
		t.Errorf("key with https: %v", err)
	}
}

func TestEditKustomization(t *testing.T) {
	img := image{repository: "ghcr.io/acme/app", digest: digB}
	for _, tc := range []struct {
		name, in, want, prev string
		target               Target
		changed              bool
	}{
		{
			name: "existing entry updated, newTag removed, comments and others kept",
			in: `apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization

# the app
resources:
- ../../base

images:
- name: app # our image
  newName: ghcr.io/acme/app
  newTag: "1.2"
- name: redis
  newTag: "7"
`,
			target: Target{KustomizeImage: "app"},
			want: `apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization

# the app
resources:
- ../../base

images:
- name: app # our image
  newName: ghcr.io/acme/app
  digest: ` + digB + `
- name: redis
  newTag: "7"
`,
			changed: true,
		},
		{
			name:    "matched by newName, previous digest",
			in:      "images:\n  - name: app\n    newName: ghcr.io/acme/app\n    digest: " + digA + "\n",
			want:    "images:\n  - name: app\n    newName: ghcr.io/acme/app\n    digest: " + digB + "\n",
			prev:    digA,
			changed: true,
		},
		{
			name:    "missing entry added",
			in:      "resources:\n- a.yaml\nimages:\n- name: redis\n  newTag: \"7\"\n",
			want:    "resources:\n- a.yaml\nimages:\n- name: redis\n  newTag: \"7\"\n- name: ghcr.io/acme/app\n  digest: " + digB + "\n",
			changed: true,
		},
		{
			name:    "missing images list added",
			in:      "resources:\n- a.yaml\n",
			want:    "resources:\n- a.yaml\nimages:\n- name: ghcr.io/acme/app\n  digest: " + digB + "\n",
			changed: true,
		},
		{
			name: "already there",
			in:   "images:\n- name: ghcr.io/acme/app\n  digest: " + digB + "\n",
			want: "images:\n- name: ghcr.io/acme/app\n  digest: " + digB + "\n",
			prev: digB,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, err := applyEdit([]byte(tc.in), "kustomization.yaml", tc.target, img)
			if err != nil {
				t.Fatal(err)
			}
			if string(e.after) != tc.want || e.changed != tc.changed || e.previous != tc.prev {
				t.Errorf("got changed=%v prev=%q\n%s\nwant changed=%v prev=%q\n%s", e.changed, e.previous, e.after, tc.changed, tc.prev, tc.want)
			}
		})
	}
}

func TestEditValues(t *testing.T) {
	img := image{repository: "ghcr.io/acme/app", digest: digB}
	in := "# values for staging\nreplicaCount: 2\n\nimage:\n  repository: old/app # set by CI\n  tag: \"1.0\"\n\nservice:\n  port: 80\n"
	e, err := applyEdit([]byte(in), "values.yaml", Target{ValuesKey: "image.digest", RepositoryKey: "image.repository"}, img)
	if err != nil {
		t.Fatal(err)
	}
	want := "# values for staging\nreplicaCount: 2\n\nimage:\n  repository: ghcr.io/acme/app # set by CI\n  tag: \"1.0\"\n  digest: " + digB + "\n\nservice:\n  port: 80\n"
	if string(e.after) != want || !e.changed || e.previous != "" {
		t.Errorf("got\n%s\nwant\n%s", e.after, want)
	}
	// Nested key created from nothing.
	e, err = applyEdit([]byte("replicaCount: 1\n"), "values.yaml", Target{ValuesKey: "app.image.digest"}, img)
	if err != nil {
		t.Fatal(err)
	}
	if want := "replicaCount: 1\napp:\n  image:\n    digest: " + digB + "\n"; string(e.after) != want {
		t.Errorf("got\n%s\nwant\n%s", e.after, want)
	}
	// A non-scalar at the key is an error naming the input.
	_, err = applyEdit([]byte("image:\n  digest:\n    a: b\n"), "values.yaml", Target{ValuesKey: "image.digest"}, img)
	if err == nil || !strings.Contains(err.Error(), `input "image-path"`) {
		t.Errorf("map at key: %v", err)
	}
	_, err = applyEdit([]byte("image: nginx\n"), "values.yaml", Target{ValuesKey: "image.digest"}, img)
	if err == nil || !strings.Contains(err.Error(), "not a map") {
		t.Errorf("scalar on the way: %v", err)
	}
	st, err := readState(e.after, "values.yaml", Target{ValuesKey: "app.image.digest"})
	if err != nil || st.digest != digB || st.image() != digB {
		t.Errorf("readState = %+v, %v", st, err)
	}
}

func TestUnifiedDiff(t *testing.T) {
	d := unifiedDiff("k.yaml", "a\nb\nc\n", "a\nB\nc\nd\n")
	want := "--- a/k.yaml\n+++ b/k.yaml\n@@ -1,3 +1,4 @@\n a\n-b\n+B\n c\n+d\n"
	if d != want {
		t.Errorf("diff:\n%s\nwant\n%s", d, want)
	}
	if unifiedDiff("k", "x\n", "x\n") != "" {
		t.Error("equal files give a diff")
	}
}
