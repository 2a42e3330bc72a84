package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gantry-ci/gantry/internal/config"
	"github.com/gantry-ci/gantry/internal/stages"
)

// TestSchemaInStep: actions/gantry.schema.json, which every stage binary
// embeds to check gantry.yaml and editors read, is the schema generated
// from the stages' Inputs and action.yml descriptions now.
func TestSchemaInStep(t *testing.T) {
	var b bytes.Buffer
	if err := configCmd(&b, []string{"schema"}); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join("..", "..", "actions", "gantry.schema.json")
	disk, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(disk, b.Bytes()) {
		t.Fatalf("%s is out of date: run go run ./cmd/gantry config schema > %s", path, path)
	}
}

// TestReadmeConfigExamples: every gantry.yaml in the README (a yaml block
// with "version: 1") passes the check, so a user who copies one starts
// from a file that works.
func TestReadmeConfigExamples(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	schema, err := stages.ConfigSchema()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, part := range strings.Split(string(readme), "```yaml\n")[1:] {
		block, _, _ := strings.Cut(part, "```")
		if !strings.Contains(block, "version: 1") {
			continue
		}
		n++
		// Blocks inside list items are indented.
		block = dedent(block)
		f, err := config.Parse("README.md", []byte(block), schema)
		if err != nil {
			t.Errorf("a gantry.yaml in the README does not pass the check:\n%v\n%s", err, block)
			continue
		}
		if f.Environments() == nil {
			t.Errorf("a README gantry.yaml has no deploy environments:\n%s", block)
		}
	}
	if n < 2 {
		t.Errorf("found %d gantry.yaml examples in the README, want the quick start's and the config section's", n)
	}
}

func dedent(s string) string {
	lines := strings.Split(s, "\n")
	indent := -1
	for _, l := range lines {
		if strings.TrimSpace(l) == "" {
			continue
		}
		if n := len(l) - len(strings.TrimLeft(l, " ")); indent < 0 || n < indent {
			indent = n
		}
	}
	for i, l := range lines {
		if len(l) >= indent && indent > 0 {
			lines[i] = l[indent:]
		}
	}
	return strings.Join(lines, "\n")
}

// TestStarterGantryYAML: the starters' gantry.yaml passes the check.
func TestStarterGantryYAML(t *testing.T) {
	schema, err := stages.ConfigSchema()
	if err != nil {
		t.Fatal(err)
	}
	f, err := config.Load(filepath.Join("..", "..", "workflows", "gantry.yaml"), schema)
	if err != nil {
		t.Fatalf("workflows/gantry.yaml does not pass the check:\n%v", err)
	}
	if v, _ := config.Resolve(f, "deploy", "production", "manifests", "", ""); v != "k8s/overlays/production" {
		t.Errorf("production manifests %q", v)
	}
}
