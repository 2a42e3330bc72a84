package ghaction

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/gantry-ci/gantry/internal/config"
)

// Struct tags understood by Decode and Encode:
//
//	input:"name"      the action input; "-" marks a field that is not an input
//	default:"value"   used when the input is empty (must equal action.yml's default)
//	required:"true"   an empty input is an error
//	secret:"true"     the value is masked in the log before anything else happens
//	list:"lines"      []string split on newlines only (values may hold commas)
//	list:"argv"       []string from a JSON array or whitespace-separated words
//	output:"name"     the action output written by Encode
//
// Plain []string inputs split on commas and newlines. Empty items and
// surrounding blanks are dropped, and lines starting with '#' are comments.

// InputName is the environment variable GitHub sets for an action input:
// INPUT_ plus the upper-cased name with spaces turned into underscores and
// hyphens kept (INPUT_REGISTRY-PASSWORD), as GitHub does for JavaScript and
// Docker actions.
func InputName(input string) string {
	return "INPUT_" + strings.ToUpper(strings.ReplaceAll(input, " ", "_"))
}

// Field describes one tagged field of an Inputs or Outputs struct.
type Field struct {
	Name     string // input or output name
	GoName   string
	Default  string
	Required bool
	Secret   bool
	// Kind is the value's type as gantry.yaml's schema names it:
	// "string", "boolean", "integer", "duration" or "list" (List says
	// how a list splits: "", "lines" or "argv").
	Kind string
	List string
}

// InputFields lists the inputs declared by the struct type of v.
func InputFields(v any) []Field { return fields(v, "input") }

// OutputFields lists the outputs declared by the struct type of v.
func OutputFields(v any) []Field { return fields(v, "output") }

func fields(v any, tag string) []Field {
	t := reflect.TypeOf(v)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	var out []Field
	for i := range t.NumField() {
		f := t.Field(i)
		name, ok := f.Tag.Lookup(tag)
		if !ok || name == "-" {
			continue
		}
		out = append(out, Field{
			Name:     name,
			GoName:   f.Name,
			Default:  f.Tag.Get("default"),
			Required: f.Tag.Get("required") == "true",
			Secret:   f.Tag.Get("secret") == "true",
			Kind:     kindOf(f.Type),
			List:     f.Tag.Get("list"),
		})
	}
	return out
}

// Decode fills the struct pointed to by dst from the action's inputs. Secrets
// are masked first, so not even a decoding error can print them. Every bad
// input is reported, not only the first.
func (e *Env) Decode(dst any) error {
	rv := reflect.ValueOf(dst)
	if rv.Kind() != reflect.Pointer || rv.Elem().Kind() != reflect.Struct {
		return fmt.Errorf("decode: need a pointer to a struct, got %T", dst)
	}
	rv = rv.Elem()
	rt := rv.Type()
	for i := range rt.NumField() {
		f := rt.Field(i)
		name, ok := f.Tag.Lookup("input")
		if ok && name != "-" && f.Tag.Get("secret") == "true" {
			for _, line := range strings.Split(e.GetInput(name), "\n") {
				if s := strings.TrimSpace(line); s != "" {
					e.AddMask(s)
				}
			}
		}
	}
	var errs []error
	var rows []provenance
	for i := range rt.NumField() {
		f := rt.Field(i)
		name, ok := f.Tag.Lookup("input")
		if !ok || name == "-" {
			continue
		}
		raw, src := e.Input(name, f.Tag.Get("default"))
		secret := f.Tag.Get("secret") == "true"
		if raw != "" {
			shown := raw
			if secret {
				shown = "***"
			}
			rows = append(rows, provenance{name, shown, src})
		}
		if raw == "" {
			if f.Tag.Get("required") == "true" {
				where := ""
				if sec := config.SectionOf(e.stage); sec != "" {
					where = fmt.Sprintf(", or under %s: in gantry.yaml", sec)
				}
				errs = append(errs, fmt.Errorf("input %q is required: set it in the step's with: block (or %s in the environment%s)", name, InputName(name), where))
			}
			continue
		}
		if err := set(rv.Field(i), raw, f.Tag.Get("list")); err != nil {
			if secret {
				err = errors.New("invalid value")
			}
			if src.From == config.FromFile {
				errs = append(errs, fmt.Errorf("input %q (from %s): %w", name, src, err))
				continue
			}
			errs = append(errs, fmt.Errorf("input %q: %w", name, err))
		}
	}
	if e.cfg != nil {
		e.Summary(e.provenanceSummary(rows))
	}
	return errors.Join(errs...)
}

var durationType = reflect.TypeFor[time.Duration]()

// kindOf names the kind of value a field of type t takes (see Field.Kind).
func kindOf(t reflect.Type) string {
	switch {
	case t == durationType:
		return "duration"
	case t.Kind() == reflect.Bool:
		return "boolean"
	case t.Kind() == reflect.Int:
		return "integer"
	case t.Kind() == reflect.Slice:
		return "list"
	}
	return "string"
}

func set(v reflect.Value, raw, list string) error {
	switch {
	case v.Type() == durationType:
		d, err := time.ParseDuration(raw)
		if err != nil {
			return fmt.Errorf("%q is not a duration: use a number with a unit, such as 90s, 15m or 1h", raw)
		}
		if d < 0 {
			return fmt.Errorf("%q is negative: use a positive duration", raw)
		}
		v.SetInt(int64(d))
	case v.Kind() == reflect.String:
		v.SetString(raw)
	case v.Kind() == reflect.Bool:
		b, err := ParseBool(raw)
		if err != nil {
			return err
		}
		v.SetBool(b)
	case v.Kind() == reflect.Int:
		n, err := strconv.Atoi(raw)
		if err != nil {
			return fmt.Errorf("%q is not a whole number", raw)
		}
		v.SetInt(int64(n))
	case v.Kind() == reflect.Slice && v.Type().Elem().Kind() == reflect.String:
		items, err := SplitList(raw, list)
		if err != nil {
			return err
		}
		v.Set(reflect.ValueOf(items))
	default:
		return fmt.Errorf("unsupported field type %s", v.Type())
	}
	return nil
}

// ParseBool accepts the spellings YAML users write for booleans (the one
// rule, config.ParseBool, which gantry.yaml is checked with too).
func ParseBool(raw string) (bool, error) { return config.ParseBool(raw) }

// SplitList splits a list input. mode is "" (commas and newlines), "lines"
// (newlines only) or "argv" (a JSON array, or whitespace-separated words).
func SplitList(raw, mode string) ([]string, error) {
	if mode == "argv" {
		raw = strings.TrimSpace(raw)
		if strings.HasPrefix(raw, "[") {
			var argv []string
			if err := json.Unmarshal([]byte(raw), &argv); err != nil {
				return nil, fmt.Errorf("%q is not a JSON array of strings: write it as [\"/app\", \"--flag\"]", raw)
			}
			return argv, nil
		}
		return strings.Fields(raw), nil
	}
	seps := "\n"
	if mode == "" {
		seps = "\n,"
	}
	var out []string
	for _, line := range strings.Split(raw, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		for _, item := range strings.FieldsFunc(line, func(r rune) bool { return strings.ContainsRune(seps, r) }) {
			if item = strings.TrimSpace(item); item != "" {
				out = append(out, item)
			}
		}
	}
	return out, nil
}

// Encode writes every output-tagged field of src as a step output. Strings
// are written as they are, string slices one item per line, and everything
// else as JSON.
func (e *Env) Encode(src any) error {
	rv := reflect.Indirect(reflect.ValueOf(src))
	rt := rv.Type()
	for i := range rt.NumField() {
		f := rt.Field(i)
		name, ok := f.Tag.Lookup("output")
		if !ok || name == "-" {
			continue
		}
		s, err := FormatOutput(rv.Field(i).Interface())
		if err != nil {
			return fmt.Errorf("output %q: %w", name, err)
		}
		if err := e.SetOutput(name, s); err != nil {
			return err
		}
	}
	return nil
}

// FormatOutput renders one output value as Encode writes it.
func FormatOutput(v any) (string, error) {
	switch x := v.(type) {
	case string:
		return x, nil
	case []string:
		return strings.Join(x, "\n"), nil
	case bool, int, int64:
		return fmt.Sprint(x), nil
	}
	b, err := json.Marshal(v)
	return string(b), err
}
