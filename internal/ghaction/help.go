package ghaction

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/gantry-ci/gantry/internal/config"
)

// Set at link time by scripts/dist.sh (-X): the release tag and commit a
// binary was built from. Without them --version says "dev" and the commit
// Go recorded, if any.
var (
	version = "dev"
	commit  = ""
)

// Version is what --version prints after the binary's name: version,
// commit and the Go toolchain and platform.
func Version() string {
	c := commit
	if c == "" {
		if bi, ok := debug.ReadBuildInfo(); ok {
			for _, s := range bi.Settings {
				if s.Key == "vcs.revision" {
					c = s.Value
				}
			}
		}
	}
	if c == "" {
		c = "unknown"
	}
	return fmt.Sprintf("%s (commit %s, %s %s/%s)", version, c, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

// actionHelp renders an action.yml as a stage binary's help: what it
// does, every input with its environment variable, default and
// description, and every output, in the file's order.
func actionHelp(stage string, actionYAML []byte) (string, error) {
	schema, err := config.Embedded()
	if err != nil {
		return "", err
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(actionYAML, &doc); err != nil {
		return "", err
	}
	if len(doc.Content) == 0 {
		return "", fmt.Errorf("empty action.yml")
	}
	root := doc.Content[0]
	var b strings.Builder
	if d := field(root, "description"); d != nil {
		fmt.Fprintf(&b, "%s\n", wrap(d.Value, 80, ""))
	}
	if in := field(root, "inputs"); in != nil && len(in.Content) > 0 {
		b.WriteString("\ninputs (environment variables):\n")
		for i := 0; i+1 < len(in.Content); i += 2 {
			name, spec := in.Content[i].Value, in.Content[i+1]
			line := "  INPUT_" + strings.ToUpper(name)
			// Required and default are Go's (via the embedded schema):
			// action.yml leaves them empty for gantry.yaml.
			if in, ok := schema.Input(stage, name); ok && in.Required {
				line += "  (required)"
			} else if ok && in.Default != "" {
				line += "  default: " + strings.ReplaceAll(in.Default, "\n", `\n`)
			}
			b.WriteString(line + "\n")
			if d := field(spec, "description"); d != nil {
				b.WriteString(wrap(d.Value, 80, "      ") + "\n")
			}
		}
	}
	if out := field(root, "outputs"); out != nil && len(out.Content) > 0 {
		b.WriteString("\noutputs (stdout, see --output):\n")
		for i := 0; i+1 < len(out.Content); i += 2 {
			b.WriteString("  " + out.Content[i].Value + "\n")
			if d := field(out.Content[i+1], "description"); d != nil {
				b.WriteString(wrap(d.Value, 80, "      ") + "\n")
			}
		}
	}
	return b.String(), nil
}

// field is a mapping node's value for key, nil when absent.
func field(m *yaml.Node, key string) *yaml.Node {
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

// wrap fills text into lines of at most width, each starting with indent.
func wrap(text string, width int, indent string) string {
	var lines []string
	line := indent
	for _, w := range strings.Fields(text) {
		if len(line) > len(indent) && len(line)+1+len(w) > width {
			lines = append(lines, line)
			line = indent
		}
		if len(line) > len(indent) {
			line += " "
		}
		line += w
	}
	return strings.Join(append(lines, line), "\n")
}
