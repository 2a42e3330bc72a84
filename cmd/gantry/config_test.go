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

// TestReadmeConfigExample: the README's gantry.yaml passes the check, so
// a user who copies it starts from a file that works.
func TestReadmeConfigExample(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(readme), "## One file: gantry.yaml")
	if !ok {
		t.Fatal("README has no gantry.yaml section")
	}
	_, block, ok := strings.Cut(after, "```yaml\n")
	block, _, ok2 := strings.Cut(block, "```")
	if !ok || !ok2 {
		t.Fatal("the section has no yaml block")
	}
	schema, err := stages.ConfigSchema()
	if err != nil {
		t.Fatal(err)
	}
	f, err := config.Parse("README.md", []byte(block), schema)
	if err != nil {
		t.Fatalf("the README's gantry.yaml does not pass the check:\n%v", err)
	}
	if v, _ := config.Resolve(f, "deploy", "production", "strategy", "", "rolling"); v != "blue-green" {
		t.Errorf("production strategy %q", v)
	}
}
