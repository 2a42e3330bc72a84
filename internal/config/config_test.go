package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func testSchema(t *testing.T) *Schema {
	t.Helper()
	s, err := NewSchema([]Section{
		{Name: "build", Stage: "build", Inputs: []Input{
			{Name: "image", Kind: KindString, Required: true},
			{Name: "platforms", Kind: KindList, Default: "linux/amd64,linux/arm64"},
			{Name: "push", Kind: KindBoolean, Default: "true"},
			{Name: "jobs", Kind: KindInteger, Default: "4"},
			{Name: "timeout", Kind: KindDuration, Default: "30m"},
			{Name: "entrypoint", Kind: KindList, List: "argv"},
			{Name: "registry-password", Kind: KindString, Secret: true},
		}},
		{Name: "deploy", Stage: "deploy", Inputs: []Input{
			{Name: "environment", Kind: KindString, Required: true},
			{Name: "namespace", Kind: KindString},
			{Name: "replicas", Kind: KindInteger},
		}},
		{Name: "analysis", Stage: "analyze", Inputs: []Input{
			{Name: "preset", Kind: KindString},
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	// What is checked is the schema as shipped: written and read back.
	b, err := s.JSON()
	if err != nil {
		t.Fatal(err)
	}
	back, err := ParseSchema(b)
	if err != nil {
		t.Fatal(err)
	}
	return back
}

const good = `# yaml-language-server: $schema=https://raw.githubusercontent.com/gantry-ci/gantry/main/actions/gantry.schema.json
version: 1
build:
  image: ghcr.io/acme/api
  platforms: [linux/amd64, linux/arm64]
  push: false
  jobs: 2
  entrypoint: [/app, --serve]
deploy:
  environment: staging
  namespace: apps
  environments:
    staging:
      replicas: 1
    production:
      namespace: apps-prod
      replicas: 3
analysis:
  preset: prom-client
`

func TestParseAndResolve(t *testing.T) {
	f, err := Parse("gantry.yaml", []byte(good), testSchema(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		stage, env, name, step, def string
		want, from                  string
	}{
		{"build", "", "image", "", "", "ghcr.io/acme/api", "gantry.yaml:4 (build.image)"},
		{"build", "", "image", "ghcr.io/acme/other", "", "ghcr.io/acme/other", "step input"},
		{"build", "", "platforms", "", "linux/amd64", "linux/amd64\nlinux/arm64", "gantry.yaml:5 (build.platforms)"},
		{"build", "", "entrypoint", "", "", `["/app","--serve"]`, "gantry.yaml:8 (build.entrypoint)"},
		{"build", "", "timeout", "", "30m", "30m", "default"},
		{"build", "", "registry-password", "", "", "", "not set"},
		{"deploy", "staging", "namespace", "", "", "apps", "gantry.yaml:11 (deploy.namespace)"},
		{"deploy", "production", "namespace", "", "", "apps-prod", "gantry.yaml:16 (deploy.environments.production.namespace)"},
		{"deploy", "production", "replicas", "", "", "3", "gantry.yaml:17 (deploy.environments.production.replicas)"},
		{"deploy", "production", "replicas", "5", "", "5", "step input"},
		{"deploy", "", "environment", "", "", "staging", "gantry.yaml:10 (deploy.environment)"},
		{"analyze", "", "preset", "", "", "prom-client", "gantry.yaml:19 (analysis.preset)"},
		{"sbom", "", "image", "", "", "", "not set"},
	} {
		got, src := Resolve(f, tt.stage, tt.env, tt.name, tt.step, tt.def)
		if got != tt.want || src.String() != tt.from {
			t.Errorf("%s.%s (env %q, step %q): %q from %s, want %q from %s", tt.stage, tt.name, tt.env, tt.step, got, src, tt.want, tt.from)
		}
	}
	if envs := f.Environments(); strings.Join(envs, ",") != "production,staging" {
		t.Errorf("environments %v", envs)
	}
}

func TestParseErrors(t *testing.T) {
	s := testSchema(t)
	for _, tt := range []struct{ name, file, want string }{
		{"unknown section", "biuld:\n  image: x\n", "gantry.yaml:1:1: biuld: unknown section: did you mean build?"},
		{"unknown key", "build:\n  platfroms: linux/amd64\n", "gantry.yaml:2:3: build.platfroms: unknown key: did you mean platforms?"},
		{"unknown key far", "build:\n  colour: red\n", "gantry.yaml:2:3: build.colour: unknown key: build's inputs are listed"},
		{"bool", "build:\n  push: maybe\n", `gantry.yaml:2:9: build.push: "maybe" is not a boolean: use true or false`},
		{"int", "build:\n  jobs: many\n", `gantry.yaml:2:9: build.jobs: "many" is not a whole number`},
		{"duration", "build:\n  timeout: fast\n", `gantry.yaml:2:12: build.timeout: "fast" is not a duration`},
		{"list for scalar", "build:\n  image: [a, b]\n", "gantry.yaml:2:10: build.image: is a list, but image takes one string"},
		{"mapping value", "build:\n  platforms: {a: b}\n", "gantry.yaml:2:14: build.platforms: must be a plain value or a list"},
		{"secret", "build:\n  registry-password: hunter2\n", "gantry.yaml:2:3: build.registry-password: is a secret: never write it in a file"},
		{"null", "build:\n  image:\n", "build.image: has no value"},
		{"env block key", "deploy:\n  environments:\n    prod:\n      nmespace: x\n", "gantry.yaml:4:7: deploy.environments.prod.nmespace: unknown key: did you mean namespace?"},
		{"env in env", "deploy:\n  environments:\n    prod:\n      environment: x\n", "deploy.environments.prod.environment: cannot be set inside an environment's block"},
		{"environments not map", "deploy:\n  environments: [a]\n", "deploy.environments: must map environment names"},
		{"section not map", "build: yes\n", "gantry.yaml:1:8: build: must be a mapping of build's inputs"},
		{"version", "version: 2\n", `gantry.yaml:1:10: version: "2": the only version is 1`},
		{"not a mapping", "- build\n", "the file must be a mapping of sections"},
		{"duplicate", "build:\n  jobs: 1\n  jobs: 2\n", `mapping key "jobs" already defined at line 2`},
		{"bad yaml", "build:\n  image: [\n", "gantry.yaml: "},
	} {
		_, err := Parse("gantry.yaml", []byte(tt.file), s)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error %v, want it to contain %q", tt.name, err, tt.want)
		}
	}
	// Every problem is reported at once.
	_, err := Parse("gantry.yaml", []byte("build:\n  push: maybe\n  jobs: x\nanalysis:\n  presett: a\n"), s)
	if err == nil || strings.Count(err.Error(), "\n") != 2 {
		t.Errorf("want three errors, got %v", err)
	}
	// An empty file sets nothing.
	for _, empty := range []string{"", "# only a comment\n", "---\n"} {
		f, err := Parse("gantry.yaml", []byte(empty), s)
		if err != nil {
			t.Fatalf("%q: %v", empty, err)
		}
		if v, src := Resolve(f, "build", "", "push", "", "true"); v != "true" || src.From != FromDefault {
			t.Errorf("%q: push %q from %s", empty, v, src)
		}
	}
}

func TestFindAndLocate(t *testing.T) {
	dir := t.TempDir()
	if p, err := Find(dir); p != "" || err != nil {
		t.Fatalf("empty dir: %q %v", p, err)
	}
	if err := os.WriteFile(filepath.Join(dir, ".gantry.yaml"), []byte("build: {}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if p, err := Locate("", dir); p != filepath.Join(dir, ".gantry.yaml") || err != nil {
		t.Fatalf("hidden file: %q %v", p, err)
	}
	if p, err := Locate(Off, dir); p != "" || err != nil {
		t.Fatalf("none: %q %v", p, err)
	}
	if _, err := Locate("ci/gantry.yaml", dir); err == nil || !strings.Contains(err.Error(), `input "config"`) {
		t.Fatalf("missing named file: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "gantry.yaml"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Find(dir); err == nil || !strings.Contains(err.Error(), "keep one") {
		t.Fatalf("both files: %v", err)
	}
}

func TestSchemaJSON(t *testing.T) {
	s := testSchema(t)
	b, err := s.JSON()
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	for _, want := range []string{
		`"$schema": "https://json-schema.org/draft/2020-12/schema"`,
		`"additionalProperties": false`,
		`"default": true`, `"default": 4`, `"pattern": "^([0-9]+`,
		`"x-gantry-secret": true`,
		`"environments": {`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("schema lacks %s", want)
		}
	}
	// Sections keep the pipeline's order.
	if strings.Index(text, `"build": {`) > strings.Index(text, `"deploy": {`) || strings.Index(text, `"deploy": {`) > strings.Index(text, `"analysis": {`) {
		t.Error("sections out of order")
	}
}
