// Package actions holds the composite actions' metadata, embedded so that
// every stage binary's --help is rendered from the very action.yml its
// action runs it with: one source for inputs, defaults and descriptions.
package actions

import "embed"

//go:embed */action.yml
var files embed.FS

// gantry.yaml's JSON Schema, generated from the stages' Inputs by
// `gantry config schema` (a test keeps it in step).
//
//go:embed gantry.schema.json
var schema []byte

// Schema returns gantry.schema.json.
func Schema() []byte { return schema }

// Metadata returns actions/<stage>/action.yml, false when there is none.
func Metadata(stage string) ([]byte, bool) {
	b, err := files.ReadFile(stage + "/action.yml")
	return b, err == nil
}
