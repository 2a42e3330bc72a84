package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
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
