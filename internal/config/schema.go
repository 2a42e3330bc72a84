package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"sync"

	"github.com/gantry-ci/gantry/actions"
)

// Kinds of input values.
const (
	KindString   = "string"
	KindBoolean  = "boolean"
	KindInteger  = "integer"
	KindDuration = "duration"
	KindList     = "list"
)

// Input is one stage input as the schema describes it.
type Input struct {
	Name        string
	Description string
	Default     string
	Kind        string // one of the Kind constants
	List        string // how a list splits: "", "lines" or "argv"
	Required    bool
	Secret      bool
}

// Section is one stage's part of the file.
type Section struct {
	Name   string // build, …, analysis, …
	Stage  string // the stage's action: build, …, analyze, …
	Inputs []Input
}

func (s *Section) input(name string) (Input, bool) {
	for _, in := range s.Inputs {
		if in.Name == name {
			return in, true
		}
	}
	return Input{}, false
}

func (s *Section) names() []string {
	var out []string
	for _, in := range s.Inputs {
		out = append(out, in.Name)
	}
	return out
}

// Schema is what gantry.yaml may hold.
type Schema struct {
	sections map[string]*Section
}

// NewSchema makes a schema of sections (see Sections for their names).
func NewSchema(secs []Section) (*Schema, error) {
	s := &Schema{sections: map[string]*Section{}}
	for i := range secs {
		sec := secs[i]
		if !slices.Contains(sectionOrder, sec.Name) {
			return nil, fmt.Errorf("no section %q in gantry.yaml", sec.Name)
		}
		s.sections[sec.Name] = &sec
	}
	return s, nil
}

// Section returns one section, nil when the schema has none of that name.
func (s *Schema) Section(name string) *Section { return s.sections[name] }

// Input returns a stage's input, false when the stage has none of that name.
func (s *Schema) Input(stage, input string) (Input, bool) {
	if sec := s.sections[SectionOf(stage)]; sec != nil {
		return sec.input(input)
	}
	return Input{}, false
}

// SchemaID is where the schema is published, for editors'
// "# yaml-language-server: $schema=" lines.
const SchemaID = "https://raw.githubusercontent.com/gantry-ci/gantry/main/actions/gantry.schema.json"

// The JSON Schema document. x-gantry-* keywords carry what Gantry needs to
// check a file with line numbers; editors ignore them.
type jsonSchema struct {
	Schema      string                 `json:"$schema,omitempty"`
	ID          string                 `json:"$id,omitempty"`
	Title       string                 `json:"title,omitempty"`
	Description string                 `json:"description,omitempty"`
	Type        any                    `json:"type,omitempty"`
	Pattern     string                 `json:"pattern,omitempty"`
	Const       any                    `json:"const,omitempty"`
	Default     any                    `json:"default,omitempty"`
	Properties  *orderedProps          `json:"properties,omitempty"`
	Additional  any                    `json:"additionalProperties,omitempty"`
	Items       *jsonSchema            `json:"items,omitempty"`
	AnyOf       []*jsonSchema          `json:"anyOf,omitempty"`
	Not         *jsonSchema            `json:"not,omitempty"`
	Kind        string                 `json:"x-gantry-kind,omitempty"`
	List        string                 `json:"x-gantry-list,omitempty"`
	Secret      bool                   `json:"x-gantry-secret,omitempty"`
	Required    bool                   `json:"x-gantry-required,omitempty"`
	Stage       string                 `json:"x-gantry-stage,omitempty"`
	Defs        map[string]*jsonSchema `json:"$defs,omitempty"`
	Ref         string                 `json:"$ref,omitempty"`
}

// orderedProps keeps properties in the stages' order when written.
type orderedProps struct {
	keys []string
	m    map[string]*jsonSchema
}

func (o *orderedProps) set(k string, v *jsonSchema) {
	if o.m == nil {
		o.m = map[string]*jsonSchema{}
	}
	if _, ok := o.m[k]; !ok {
		o.keys = append(o.keys, k)
	}
	o.m[k] = v
}

func (o *orderedProps) MarshalJSON() ([]byte, error) {
	b := []byte{'{'}
	for i, k := range o.keys {
		if i > 0 {
			b = append(b, ',')
		}
		kb, _ := json.Marshal(k)
		var vb bytes.Buffer
		enc := json.NewEncoder(&vb)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(o.m[k]); err != nil {
			return nil, err
		}
		b = append(append(append(b, kb...), ':'), bytes.TrimSpace(vb.Bytes())...)
	}
	return append(b, '}'), nil
}

func (o *orderedProps) UnmarshalJSON(b []byte) error {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	// The keys in the document's order.
	dec := json.NewDecoder(bytes.NewReader(b))
	if _, err := dec.Token(); err != nil {
		return err
	}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return err
		}
		k, _ := t.(string)
		var v jsonSchema
		if err := json.Unmarshal(raw[k], &v); err != nil {
			return fmt.Errorf("%s: %w", k, err)
		}
		o.set(k, &v)
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return err
		}
	}
	return nil
}

// noMore is additionalProperties: false.
var noMore = json.RawMessage("false")

const durationPattern = `^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$|^0$`

func inputSchema(in Input) *jsonSchema {
	s := &jsonSchema{Description: in.Description, Kind: in.Kind, List: in.List, Required: in.Required}
	if in.Secret {
		s.Secret = true
		s.Description = "A secret: never in a file. Pass it to the step from secrets. " + in.Description
		s.Not = &jsonSchema{}
		return s
	}
	switch in.Kind {
	case KindBoolean:
		s.Type = "boolean"
		if b, err := ParseBool(in.Default); err == nil && in.Default != "" {
			s.Default = b
		}
	case KindInteger:
		s.Type = "integer"
		if n, err := strconv.Atoi(in.Default); err == nil {
			s.Default = n
		}
	case KindDuration:
		s.Type = "string"
		s.Pattern = durationPattern
	case KindList:
		s.AnyOf = []*jsonSchema{{Type: "string"}, {Type: "array", Items: &jsonSchema{Type: "string"}}}
	default:
		s.Type = "string"
	}
	if s.Default == nil && in.Default != "" {
		s.Default = in.Default
	}
	return s
}

// JSON renders the schema as a JSON Schema (draft 2020-12) document.
func (s *Schema) JSON() ([]byte, error) {
	root := &jsonSchema{
		Schema:      "https://json-schema.org/draft/2020-12/schema",
		ID:          SchemaID,
		Title:       "gantry.yaml",
		Description: "How a repository ships with Gantry: one section per stage, whose keys are the stage action's inputs. A step's own input wins over the file; deploy.environments.<name> wins over deploy. Generated by `gantry config schema`; do not edit.",
		Type:        "object",
		Additional:  noMore,
		Properties:  &orderedProps{},
	}
	root.Properties.set("version", &jsonSchema{Description: "The file format's version.", Const: 1})
	for _, name := range sectionOrder {
		sec := s.sections[name]
		if sec == nil {
			continue
		}
		props := &orderedProps{}
		envProps := &orderedProps{}
		for _, in := range sec.Inputs {
			props.set(in.Name, inputSchema(in))
			if name == "deploy" && in.Name != "environment" {
				envProps.set(in.Name, inputSchema(in))
			}
		}
		if name == "deploy" {
			env, err := json.Marshal(&jsonSchema{Type: "object", Additional: noMore, Properties: envProps})
			if err != nil {
				return nil, err
			}
			props.set(Environments, &jsonSchema{
				Description: "Per-environment deploy inputs, chosen by the deploy stage's environment input; they win over the deploy section's.",
				Type:        "object",
				Additional:  env,
			})
		}
		root.Properties.set(name, &jsonSchema{
			Description: fmt.Sprintf("Inputs of gantry-%s (actions/%s).", sec.Stage, sec.Stage),
			Stage:       sec.Stage,
			Type:        "object",
			Additional:  noMore,
			Properties:  props,
		})
	}
	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(root); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

// ParseSchema reads a schema written by JSON.
func ParseSchema(b []byte) (*Schema, error) {
	var root jsonSchema
	if err := json.Unmarshal(b, &root); err != nil {
		return nil, fmt.Errorf("gantry.schema.json: %w", err)
	}
	if root.Properties == nil {
		return nil, fmt.Errorf("gantry.schema.json: no properties")
	}
	var secs []Section
	for _, name := range sectionOrder {
		js := root.Properties.m[name]
		if js == nil || js.Properties == nil {
			continue
		}
		sec := Section{Name: name, Stage: js.Stage}
		for _, k := range js.Properties.keys {
			if k == Environments {
				continue
			}
			p := js.Properties.m[k]
			in := Input{Name: k, Description: p.Description, Kind: p.Kind, List: p.List, Required: p.Required, Secret: p.Secret}
			switch d := p.Default.(type) {
			case nil:
			case string:
				in.Default = d
			case bool:
				in.Default = strconv.FormatBool(d)
			case float64:
				in.Default = strconv.FormatFloat(d, 'f', -1, 64)
			}
			sec.Inputs = append(sec.Inputs, in)
		}
		secs = append(secs, sec)
	}
	return NewSchema(secs)
}

var (
	embeddedOnce sync.Once
	embedded     *Schema
	embeddedErr  error
)

// Embedded is the schema shipped in this binary (actions/gantry.schema.json).
func Embedded() (*Schema, error) {
	embeddedOnce.Do(func() {
		embedded, embeddedErr = ParseSchema(actions.Schema())
	})
	return embedded, embeddedErr
}
