// Package config reads gantry.yaml: one file at the repository's root that
// says how the repository ships, one section per stage whose keys are that
// stage's action inputs. A stage takes an input from, in order: the step
// (its with: block, or INPUT_<NAME> outside Actions), the deploy
// environment's block (deploy.environments.<name>), the stage's section,
// and last the input's default.
//
// The file is checked against the JSON Schema generated from the stages'
// typed Inputs (actions/gantry.schema.json, embedded): unknown sections and
// keys, values of the wrong type and secrets written into the file are
// errors that name the file, line and key.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// FileNames are the names Find looks for, in order.
var FileNames = []string{"gantry.yaml", ".gantry.yaml"}

// Off is the config input's value that reads no file.
const Off = "none"

// SectionOf maps a stage (the action's directory name, gantry-<stage>) to
// its section in gantry.yaml; "" when the stage has none.
func SectionOf(stage string) string {
	if stage == "analyze" {
		return "analysis"
	}
	for _, s := range sectionOrder {
		if s == stage {
			return s
		}
	}
	return ""
}

// StageOf is SectionOf's inverse.
func StageOf(section string) string {
	if section == "analysis" {
		return "analyze"
	}
	return section
}

// sectionOrder is the pipeline's order, as the file is best written.
var sectionOrder = []string{"build", "sbom", "scan", "sign", "deploy", "analysis", "notify", "release"}

// Sections lists gantry.yaml's sections in pipeline order.
func Sections() []string { return slices.Clone(sectionOrder) }

// Environments is the deploy section's key for per-environment blocks.
const Environments = "environments"

// Value is one setting read from the file.
type Value struct {
	Text string // as the stage's INPUT_ variable would carry it
	Line int
	Col  int
	Key  string // e.g. deploy.environments.production.replicas
}

// File is a checked gantry.yaml.
type File struct {
	Path     string
	sections map[string]map[string]Value // section -> input -> value
	envs     map[string]map[string]Value // environment -> deploy input -> value
	envLines map[string]int              // environment -> line of its block
}

// Find returns the config file in dir ("" when there is none). Both names
// at once is an error: which one counts would be a guess.
func Find(dir string) (string, error) {
	var found []string
	for _, n := range FileNames {
		p := filepath.Join(dir, n)
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			found = append(found, p)
		}
	}
	switch len(found) {
	case 0:
		return "", nil
	case 1:
		return found[0], nil
	}
	return "", fmt.Errorf("both %s and %s exist: keep one", found[0], found[1])
}

// Locate resolves a stage's config input: empty means the file Find sees
// in dir, Off none, anything else a file that must exist.
func Locate(input, dir string) (string, error) {
	switch strings.TrimSpace(input) {
	case "":
		return Find(dir)
	case Off:
		return "", nil
	}
	p := input
	if !filepath.IsAbs(p) {
		p = filepath.Join(dir, p)
	}
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("input \"config\": %s does not exist: write it, fix the path, or leave config empty to use %s if present (%q reads no file)", p, strings.Join(FileNames, " or "), Off)
	}
	return p, nil
}

// Load reads and checks the file at path against schema.
func Load(path string, schema *Schema) (*File, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(path, data, schema)
}

// Parse checks data (the contents of path) against schema. Every problem is
// reported, each as path:line:column: key: what is wrong and the fix.
func Parse(path string, data []byte, schema *Schema) (*File, error) {
	f := &File{Path: path, sections: map[string]map[string]Value{}, envs: map[string]map[string]Value{}, envLines: map[string]int{}}
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return f, nil // an empty file sets nothing
		}
		return nil, fmt.Errorf("%s: %s", path, strings.TrimPrefix(err.Error(), "yaml: "))
	}
	if len(doc.Content) == 0 {
		return f, nil
	}
	root := doc.Content[0]
	p := &parser{path: path, schema: schema}
	if root.Kind != yaml.MappingNode {
		if root.Tag == "!!null" {
			return f, nil
		}
		return nil, p.errorf(root, "", "the file must be a mapping of sections (%s)", strings.Join(sectionOrder, ", "))
	}
	p.dups(root, "")
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		name := k.Value
		if name == "version" {
			if v.Value != "1" {
				p.add(p.errorf(v, "version", "%q: the only version is 1", v.Value))
			}
			continue
		}
		sec, ok := schema.sections[name]
		if !ok {
			msg := fmt.Sprintf("unknown section: sections are %s", strings.Join(sectionOrder, ", "))
			if s := closest(name, sectionOrder); s != "" {
				msg = fmt.Sprintf("unknown section: did you mean %s?", s)
			}
			p.add(p.errorf(k, name, "%s", msg))
			continue
		}
		if v.Tag == "!!null" {
			continue
		}
		if v.Kind != yaml.MappingNode {
			p.add(p.errorf(v, name, "must be a mapping of %s's inputs", StageOf(name)))
			continue
		}
		f.sections[name] = p.inputs(v, name, sec, name == "deploy", f)
	}
	if len(p.errs) > 0 {
		return nil, errors.Join(p.errs...)
	}
	return f, nil
}

type parser struct {
	path   string
	schema *Schema
	errs   []error
}

func (p *parser) add(err error) { p.errs = append(p.errs, err) }

func (p *parser) errorf(n *yaml.Node, key, format string, args ...any) error {
	where := fmt.Sprintf("%s:%d:%d", p.path, n.Line, n.Column)
	if key != "" {
		where += ": " + key
	}
	return fmt.Errorf("%s: %s", where, fmt.Sprintf(format, args...))
}

// inputs reads a mapping of a section's inputs; for deploy also the
// environments block.
func (p *parser) inputs(m *yaml.Node, prefix string, sec *Section, deploy bool, f *File) map[string]Value {
	out := map[string]Value{}
	p.dups(m, prefix+".")
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i], m.Content[i+1]
		key := prefix + "." + k.Value
		if deploy && k.Value == Environments {
			p.environments(v, key, sec, f)
			continue
		}
		in, ok := sec.input(k.Value)
		if !ok {
			msg := fmt.Sprintf("unknown key: %s's inputs are listed by `gantry config schema` and in the README", sec.Stage)
			if s := closest(k.Value, sec.names()); s != "" {
				msg = fmt.Sprintf("unknown key: did you mean %s?", s)
			}
			p.add(p.errorf(k, key, "%s", msg))
			continue
		}
		if in.Secret {
			p.add(p.errorf(k, key, "is a secret: never write it in a file; pass it to the step from secrets (with: %s: ${{ secrets.… }}) or as %s in the environment", in.Name, inputVar(in.Name)))
			continue
		}
		text, err := value(v, in)
		if err != nil {
			p.add(p.errorf(v, key, "%v", err))
			continue
		}
		out[in.Name] = Value{Text: text, Line: v.Line, Col: v.Column, Key: key}
	}
	return out
}

func (p *parser) environments(m *yaml.Node, key string, sec *Section, f *File) {
	if m.Kind != yaml.MappingNode {
		p.add(p.errorf(m, key, "must map environment names to deploy inputs, e.g. staging: {namespace: app-staging}"))
		return
	}
	p.dups(m, key+".")
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i], m.Content[i+1]
		name := k.Value
		if name == "" {
			p.add(p.errorf(k, key, "an environment needs a name"))
			continue
		}
		f.envLines[name] = k.Line
		if v.Tag == "!!null" {
			f.envs[name] = map[string]Value{}
			continue
		}
		if v.Kind != yaml.MappingNode {
			p.add(p.errorf(v, key+"."+name, "must be a mapping of deploy inputs"))
			continue
		}
		vals := map[string]Value{}
		for j := 0; j+1 < len(v.Content); j += 2 {
			ik := v.Content[j]
			if ik.Value == "environment" || ik.Value == Environments {
				p.add(p.errorf(ik, key+"."+name+"."+ik.Value, "cannot be set inside an environment's block"))
				v.Content[j+1] = &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null"}
			}
		}
		for k2, val := range p.inputs(v, key+"."+name, sec, false, f) {
			vals[k2] = val
		}
		f.envs[name] = vals
	}
}

// dups reports keys a mapping sets twice (YAML forbids it; which one would
// win is a guess).
func (p *parser) dups(m *yaml.Node, prefix string) {
	seen := map[string]int{}
	for i := 0; i+1 < len(m.Content); i += 2 {
		k := m.Content[i]
		if line, ok := seen[k.Value]; ok {
			p.add(p.errorf(k, prefix+k.Value, "mapping key %q already defined at line %d: keep one", k.Value, line))
			continue
		}
		seen[k.Value] = k.Line
	}
}

func inputVar(name string) string { return "INPUT_" + strings.ToUpper(name) }

// value turns a YAML node into the text the stage's INPUT_ variable would
// carry, checking it against the input's kind.
func value(v *yaml.Node, in Input) (string, error) {
	if v.Tag == "!!null" {
		return "", fmt.Errorf("has no value: give one, or remove the key to use the default")
	}
	if v.Kind == yaml.SequenceNode {
		if in.Kind != KindList {
			return "", fmt.Errorf("is a list, but %s takes one %s", in.Name, in.Kind)
		}
		var items []string
		for _, it := range v.Content {
			if it.Kind != yaml.ScalarNode || it.Tag == "!!null" {
				return "", fmt.Errorf("line %d: list items must be plain values", it.Line)
			}
			items = append(items, it.Value)
		}
		if in.List == "argv" {
			return argvJSON(items), nil
		}
		return strings.Join(items, "\n"), nil
	}
	if v.Kind != yaml.ScalarNode {
		return "", fmt.Errorf("must be a plain value%s", map[bool]string{true: " or a list", false: ""}[in.Kind == KindList])
	}
	s := v.Value
	switch in.Kind {
	case KindBoolean:
		if _, err := ParseBool(s); err != nil {
			return "", err
		}
	case KindInteger:
		if _, err := strconv.Atoi(strings.TrimSpace(s)); err != nil {
			return "", fmt.Errorf("%q is not a whole number", s)
		}
	case KindDuration:
		d, err := time.ParseDuration(strings.TrimSpace(s))
		if err != nil || d < 0 {
			return "", fmt.Errorf("%q is not a duration: use a number with a unit, such as 90s, 15m or 1h", s)
		}
	}
	return s, nil
}

func argvJSON(items []string) string {
	var b strings.Builder
	b.WriteByte('[')
	for i, it := range items {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Quote(it))
	}
	b.WriteByte(']')
	return b.String()
}

// ParseBool accepts the spellings YAML users write for booleans; every
// stage input and gantry.yaml value is read with it.
func ParseBool(raw string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(raw)) {
	case "true", "yes", "on", "1":
		return true, nil
	case "false", "no", "off", "0":
		return false, nil
	}
	return false, fmt.Errorf("%q is not a boolean: use true or false", raw)
}

// closest is the candidate within two edits of s, "" when none is.
func closest(s string, candidates []string) string {
	best, bestD := "", 3
	for _, c := range candidates {
		if d := editDistance(s, c); d < bestD {
			best, bestD = c, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}

// Has says whether the file has a section of that name.
func (f *File) Has(section string) bool {
	_, ok := f.sections[section]
	return ok
}

// Environments lists the deploy environments the file names.
func (f *File) Environments() []string {
	if f == nil {
		return nil
	}
	var out []string
	for e := range f.envs {
		out = append(out, e)
	}
	slices.Sort(out)
	return out
}

// HasEnvironment says whether the file has a block for environment.
func (f *File) HasEnvironment(environment string) bool {
	_, ok := f.envs[environment]
	return ok
}

// Lookup returns the file's value of a stage's input: the environment's
// block first (deploy only), then the stage's section.
func (f *File) Lookup(stage, environment, input string) (Value, bool) {
	if f == nil {
		return Value{}, false
	}
	sec := SectionOf(stage)
	if sec == "deploy" && environment != "" {
		if v, ok := f.envs[environment][input]; ok {
			return v, true
		}
	}
	v, ok := f.sections[sec][input]
	return v, ok
}

// Source says where an effective input value came from.
type Source struct {
	From string // FromStep, FromFile or FromDefault; "" when unset
	File string
	Line int
	Key  string
}

// Where an input's value came from.
const (
	FromStep    = "step"
	FromFile    = "file"
	FromDefault = "default"
)

func (s Source) String() string {
	switch s.From {
	case FromStep:
		return "step input"
	case FromFile:
		return fmt.Sprintf("%s:%d (%s)", filepath.Base(s.File), s.Line, s.Key)
	case FromDefault:
		return "default"
	}
	return "not set"
}

// Resolve is the one precedence rule: a non-empty step value, else the
// file's (environment block, then section), else the default.
func Resolve(f *File, stage, environment, name, step, def string) (string, Source) {
	if step != "" {
		return step, Source{From: FromStep}
	}
	if v, ok := f.Lookup(stage, environment, name); ok {
		return v.Text, Source{From: FromFile, File: f.Path, Line: v.Line, Key: v.Key}
	}
	if def != "" {
		return def, Source{From: FromDefault}
	}
	return "", Source{}
}
