package ghaction_test

import (
	"bytes"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gantry-ci/gantry/internal/ghaction"
	"github.com/gantry-ci/gantry/internal/image"
)

// testInputs has one field of every kind Decode supports.
type testInputs struct {
	Name       string        `input:"name" required:"true"`
	Greeting   string        `input:"greeting" default:"hello"`
	Verbose    bool          `input:"verbose"`
	Push       bool          `input:"push" default:"true"`
	Jobs       int           `input:"jobs" default:"4"`
	Timeout    time.Duration `input:"timeout" default:"15m"`
	Platforms  []string      `input:"platforms" default:"linux/amd64,linux/arm64"`
	Layers     []string      `input:"layers" list:"lines"`
	Cmd        []string      `input:"cmd" list:"argv"`
	Password   string        `input:"registry-password" secret:"true"`
	Multi      string        `input:"multi word"`
	Internal   string        `input:"-"`
	NotAnInput string
}

// newEnv returns an Env over a fake environment and the buffer that
// receives its workflow commands.
func newEnv(env map[string]string) (*ghaction.Env, *bytes.Buffer) {
	var buf bytes.Buffer
	return ghaction.New(func(k string) string { return env[k] }, &buf), &buf
}

func TestDecode(t *testing.T) {
	t.Parallel()
	defaults := testInputs{
		Name:      "app",
		Greeting:  "hello",
		Push:      true,
		Jobs:      4,
		Timeout:   15 * time.Minute,
		Platforms: []string{"linux/amd64", "linux/arm64"},
	}
	tests := []struct {
		name string
		env  map[string]string
		want func() testInputs
	}{
		{
			name: "defaults",
			env:  map[string]string{"INPUT_NAME": "app"},
			want: func() testInputs { return defaults },
		},
		{
			name: "blank inputs take the default",
			env:  map[string]string{"INPUT_NAME": "app", "INPUT_GREETING": "  ", "INPUT_JOBS": "\n", "INPUT_PUSH": ""},
			want: func() testInputs { return defaults },
		},
		{
			name: "every kind set",
			env: map[string]string{
				"INPUT_NAME":              "  app \n",
				"INPUT_GREETING":          "hi, there",
				"INPUT_VERBOSE":           "yes",
				"INPUT_PUSH":              "false",
				"INPUT_JOBS":              "16",
				"INPUT_TIMEOUT":           "1h30m",
				"INPUT_PLATFORMS":         "linux/amd64, linux/arm/v7\n# linux/s390x\nlinux/riscv64,,",
				"INPUT_LAYERS":            "dist/app-{arch}:/app/app\n\n  # docs later\nstatic/a,b.txt:/srv/\n",
				"INPUT_CMD":               `["serve", "--addr", ":8080", "--motd=hello world"]`,
				"INPUT_REGISTRY-PASSWORD": "hunter2",
				"INPUT_MULTI_WORD":        "spaces become underscores",
			},
			want: func() testInputs {
				return testInputs{
					Name:      "app",
					Greeting:  "hi, there",
					Verbose:   true,
					Push:      false,
					Jobs:      16,
					Timeout:   90 * time.Minute,
					Platforms: []string{"linux/amd64", "linux/arm/v7", "linux/riscv64"},
					Layers:    []string{"dist/app-{arch}:/app/app", "static/a,b.txt:/srv/"},
					Cmd:       []string{"serve", "--addr", ":8080", "--motd=hello world"},
					Password:  "hunter2",
					Multi:     "spaces become underscores",
				}
			},
		},
		{
			name: "argv as words",
			env:  map[string]string{"INPUT_NAME": "app", "INPUT_CMD": "  serve --addr\t:8080\n--verbose "},
			want: func() testInputs {
				w := defaults
				w.Cmd = []string{"serve", "--addr", ":8080", "--verbose"}
				return w
			},
		},
		{
			// GitHub keeps hyphens in INPUT_ names; an underscore spelling
			// is a different variable.
			name: "hyphen kept in the variable name",
			env:  map[string]string{"INPUT_NAME": "app", "INPUT_REGISTRY_PASSWORD": "wrong", "INPUT_REGISTRY-PASSWORD": "right"},
			want: func() testInputs {
				w := defaults
				w.Password = "right"
				return w
			},
		},
		{
			name: "underscore spelling of a hyphenated input is not read",
			env:  map[string]string{"INPUT_NAME": "app", "INPUT_REGISTRY_PASSWORD": "wrong"},
			want: func() testInputs { return defaults },
		},
		{
			name: "fields without an input are not read",
			env:  map[string]string{"INPUT_NAME": "app", "INPUT_-": "x", "INPUT_INTERNAL": "x", "INPUT_NOTANINPUT": "x"},
			want: func() testInputs { return defaults },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e, _ := newEnv(tt.env)
			var got testInputs
			if err := e.Decode(&got); err != nil {
				t.Fatalf("Decode: %v", err)
			}
			want := tt.want()
			if !equalInputs(got, want) {
				t.Errorf("Decode:\n got %+v\nwant %+v", got, want)
			}
		})
	}

	t.Run("fields that are not inputs keep their value", func(t *testing.T) {
		t.Parallel()
		e, _ := newEnv(map[string]string{"INPUT_NAME": "app", "INPUT_INTERNAL": "from env"})
		got := testInputs{Internal: "set by caller", NotAnInput: "also set"}
		if err := e.Decode(&got); err != nil {
			t.Fatalf("Decode: %v", err)
		}
		if got.Internal != "set by caller" || got.NotAnInput != "also set" {
			t.Errorf("Decode changed fields without an input: Internal=%q NotAnInput=%q", got.Internal, got.NotAnInput)
		}
	})
}

func equalInputs(a, b testInputs) bool {
	return a.Name == b.Name && a.Greeting == b.Greeting && a.Verbose == b.Verbose &&
		a.Push == b.Push && a.Jobs == b.Jobs && a.Timeout == b.Timeout &&
		slices.Equal(a.Platforms, b.Platforms) && slices.Equal(a.Layers, b.Layers) &&
		slices.Equal(a.Cmd, b.Cmd) && a.Password == b.Password && a.Multi == b.Multi &&
		a.Internal == b.Internal && a.NotAnInput == b.NotAnInput
}

func TestDecodeErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		env  map[string]string
		want []string // each must be in the error
	}{
		{
			name: "required input missing",
			env:  map[string]string{},
			want: []string{`input "name" is required`, "INPUT_NAME"},
		},
		{
			name: "required input blank",
			env:  map[string]string{"INPUT_NAME": " \n\t"},
			want: []string{`input "name" is required`, "INPUT_NAME"},
		},
		{
			name: "bad bool",
			env:  map[string]string{"INPUT_NAME": "app", "INPUT_VERBOSE": "maybe"},
			want: []string{`input "verbose"`, `"maybe" is not a boolean`},
		},
		{
			name: "bad int",
			env:  map[string]string{"INPUT_NAME": "app", "INPUT_JOBS": "four"},
			want: []string{`input "jobs"`, `"four" is not a whole number`},
		},
		{
			name: "bad duration",
			env:  map[string]string{"INPUT_NAME": "app", "INPUT_TIMEOUT": "15"},
			want: []string{`input "timeout"`, `"15" is not a duration`},
		},
		{
			name: "negative duration",
			env:  map[string]string{"INPUT_NAME": "app", "INPUT_TIMEOUT": "-5m"},
			want: []string{`input "timeout"`, `"-5m" is negative`},
		},
		{
			name: "bad argv JSON",
			env:  map[string]string{"INPUT_NAME": "app", "INPUT_CMD": `["serve", 8080]`},
			want: []string{`input "cmd"`, "is not a JSON array of strings"},
		},
		{
			name: "every bad input in one error",
			env: map[string]string{
				"INPUT_VERBOSE": "maybe",
				"INPUT_JOBS":    "four",
				"INPUT_TIMEOUT": "soon",
				"INPUT_CMD":     "[oops",
			},
			want: []string{
				`input "name" is required`, "INPUT_NAME",
				`input "verbose"`, `"maybe"`,
				`input "jobs"`, `"four"`,
				`input "timeout"`, `"soon"`,
				`input "cmd"`, `"[oops"`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e, _ := newEnv(tt.env)
			var got testInputs
			err := e.Decode(&got)
			if err == nil {
				t.Fatalf("Decode = nil error, want one (decoded %+v)", got)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not contain %q:\n%v", w, err)
				}
			}
		})
	}

	t.Run("required hyphenated input names its INPUT_ variable", func(t *testing.T) {
		t.Parallel()
		var in struct {
			User string `input:"registry-username" required:"true"`
		}
		e, _ := newEnv(map[string]string{"INPUT_REGISTRY_USERNAME": "set with the wrong spelling"})
		err := e.Decode(&in)
		if err == nil || !strings.Contains(err.Error(), `input "registry-username" is required`) || !strings.Contains(err.Error(), "INPUT_REGISTRY-USERNAME") {
			t.Errorf("Decode error = %v, want it to name registry-username and INPUT_REGISTRY-USERNAME", err)
		}
	})

	t.Run("not a pointer to a struct", func(t *testing.T) {
		t.Parallel()
		e, _ := newEnv(nil)
		var s string
		for _, dst := range []any{testInputs{}, &s, nil} {
			if err := e.Decode(dst); err == nil {
				t.Errorf("Decode(%T) = nil, want an error", dst)
			}
		}
	})

	t.Run("unsupported field type", func(t *testing.T) {
		t.Parallel()
		var in struct {
			Ratio float64 `input:"ratio"`
		}
		e, _ := newEnv(map[string]string{"INPUT_RATIO": "0.5"})
		err := e.Decode(&in)
		if err == nil || !strings.Contains(err.Error(), `input "ratio"`) || !strings.Contains(err.Error(), "float64") {
			t.Errorf("Decode error = %v, want it to name the input and its type", err)
		}
	})
}

// secretInputs has secrets of several kinds, one of them invalid.
type secretInputs struct {
	Plain string `input:"plain"`
	Token string `input:"token" secret:"true"`
	Flag  bool   `input:"secret-flag" secret:"true"`
	Count int    `input:"count" secret:"true"`
	Empty string `input:"empty-secret" secret:"true"`
}

func TestDecodeMasksSecrets(t *testing.T) {
	t.Parallel()
	e, w := newEnv(map[string]string{
		"INPUT_PLAIN":       "nothing to hide",
		"INPUT_TOKEN":       "ghp_first-line\n  second-line  \n\n",
		"INPUT_SECRET-FLAG": "notabool",
		"INPUT_COUNT":       "12x",
	})
	var in secretInputs
	err := e.Decode(&in)
	if err == nil {
		t.Fatal("Decode = nil error, want errors for secret-flag and count")
	}

	// Every line of every secret is masked, before anything else is written.
	wantMasks := "::add-mask::ghp_first-line\n" +
		"::add-mask::second-line\n" +
		"::add-mask::notabool\n" +
		"::add-mask::12x\n"
	if got := w.String(); got != wantMasks {
		t.Errorf("workflow commands written by Decode:\n%s\nwant exactly:\n%s", got, wantMasks)
	}

	// The error names the inputs but never holds a secret value, even when
	// it is reported as an annotation.
	for _, name := range []string{`input "secret-flag"`, `input "count"`} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("error does not name %s: %v", name, err)
		}
	}
	e.Fail(err)
	log := w.String()
	if !strings.HasPrefix(log, wantMasks) {
		t.Errorf("the masks are not the first thing in the log:\n%s", log)
	}
	rest := strings.TrimPrefix(log, wantMasks)
	if !strings.HasPrefix(rest, "::error::") {
		t.Errorf("Fail did not write an error annotation after the masks:\n%s", rest)
	}
	for _, secret := range []string{"notabool", "12x", "ghp_first-line", "second-line"} {
		if strings.Contains(err.Error(), secret) {
			t.Errorf("error message contains the secret %q: %v", secret, err)
		}
		if strings.Contains(rest, secret) {
			t.Errorf("log after the masks contains the secret %q:\n%s", secret, rest)
		}
	}
	if in.Token != "ghp_first-line\n  second-line" {
		t.Errorf("Token = %q, want the trimmed multi-line value", in.Token)
	}

	t.Run("empty secret writes no mask", func(t *testing.T) {
		t.Parallel()
		e, w := newEnv(map[string]string{"INPUT_PLAIN": "x"})
		var in secretInputs
		if err := e.Decode(&in); err != nil {
			t.Fatalf("Decode: %v", err)
		}
		if w.Len() != 0 {
			t.Errorf("Decode wrote %q with no secret set, want nothing", w.String())
		}
	})

	t.Run("image.Inputs masks the registry password", func(t *testing.T) {
		t.Parallel()
		e, w := newEnv(map[string]string{
			"INPUT_IMAGE":             "ghcr.io/acme/prompt-builder",
			"INPUT_BASE":              "gcr.io/distroless/static-debian12:nonroot",
			"INPUT_REGISTRY-USERNAME": "mara-okafor",
			"INPUT_REGISTRY-PASSWORD": "ghs_s3cr3t",
			"INPUT_JOBS":              "many",
		})
		var in image.Inputs
		err := e.Decode(&in)
		if err == nil || !strings.Contains(err.Error(), `input "jobs"`) {
			t.Fatalf("Decode error = %v, want one for jobs", err)
		}
		if got, want := w.String(), "::add-mask::ghs_s3cr3t\n"; got != want {
			t.Errorf("Decode wrote %q, want %q", got, want)
		}
	})
}

func TestInputName(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"image", "INPUT_IMAGE"},
		{"registry-password", "INPUT_REGISTRY-PASSWORD"},
		{"oci-layout", "INPUT_OCI-LAYOUT"},
		{"multi word", "INPUT_MULTI_WORD"},
		{"Release_File", "INPUT_RELEASE_FILE"},
	}
	for _, tt := range tests {
		if got := ghaction.InputName(tt.in); got != tt.want {
			t.Errorf("InputName(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestParseBool(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    bool
		wantErr bool
	}{
		{"true", true, false},
		{"True", true, false},
		{" yes ", true, false},
		{"on", true, false},
		{"1", true, false},
		{"false", false, false},
		{"FALSE", false, false},
		{"no", false, false},
		{"off", false, false},
		{"0", false, false},
		{"", false, true},
		{"y", false, true},
		{"2", false, true},
		{"notabool", false, true},
	}
	for _, tt := range tests {
		got, err := ghaction.ParseBool(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("ParseBool(%q) = %v, %v; want %v, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestSplitList(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, raw, mode string
		want            []string
		wantErr         bool
	}{
		{"commas", "a,b,c", "", []string{"a", "b", "c"}, false},
		{"commas and newlines with blanks", " a , b\n\n c ,\n,d ", "", []string{"a", "b", "c", "d"}, false},
		{"comment lines skipped", "# platforms\nlinux/amd64\n  # linux/arm64\nlinux/arm/v7", "", []string{"linux/amd64", "linux/arm/v7"}, false},
		{"hash inside an item is kept", "a#1,b", "", []string{"a#1", "b"}, false},
		{"CRLF", "a\r\nb\r\n", "", []string{"a", "b"}, false},
		{"empty", "", "", nil, false},
		{"only comments", "# nothing\n#", "", nil, false},
		{"lines keep commas", "KEY=a,b\n  OTHER=c  \n", "lines", []string{"KEY=a,b", "OTHER=c"}, false},
		{"lines skip comments and blanks", "# env\n\nA=1\n # B=2\nC=3", "lines", []string{"A=1", "C=3"}, false},
		{"argv JSON", `  ["/app", "--flag=a b", ""]  `, "argv", []string{"/app", "--flag=a b", ""}, false},
		{"argv words", "/app --flag  value\n--other", "argv", []string{"/app", "--flag", "value", "--other"}, false},
		{"argv empty JSON", "[]", "argv", []string{}, false},
		{"argv bad JSON", `["/app",`, "argv", nil, true},
		{"argv JSON of numbers", `[1, 2]`, "argv", nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := ghaction.SplitList(tt.raw, tt.mode)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("SplitList(%q, %q) = %q, want an error", tt.raw, tt.mode, got)
				}
				if !strings.Contains(err.Error(), "JSON array") {
					t.Errorf("error %q does not say what to write", err)
				}
				return
			}
			if err != nil || !slices.Equal(got, tt.want) {
				t.Errorf("SplitList(%q, %q) = %q, %v; want %q", tt.raw, tt.mode, got, err, tt.want)
			}
		})
	}
}

func TestInputFields(t *testing.T) {
	t.Parallel()
	t.Run("local struct", func(t *testing.T) {
		t.Parallel()
		want := []ghaction.Field{
			{Name: "name", GoName: "Name", Required: true, Kind: "string"},
			{Name: "greeting", GoName: "Greeting", Default: "hello", Kind: "string"},
			{Name: "verbose", GoName: "Verbose", Kind: "boolean"},
			{Name: "push", GoName: "Push", Default: "true", Kind: "boolean"},
			{Name: "jobs", GoName: "Jobs", Default: "4", Kind: "integer"},
			{Name: "timeout", GoName: "Timeout", Default: "15m", Kind: "duration"},
			{Name: "platforms", GoName: "Platforms", Default: "linux/amd64,linux/arm64", Kind: "list"},
			{Name: "layers", GoName: "Layers", Kind: "list", List: "lines"},
			{Name: "cmd", GoName: "Cmd", Kind: "list", List: "argv"},
			{Name: "registry-password", GoName: "Password", Secret: true, Kind: "string"},
			{Name: "multi word", GoName: "Multi", Kind: "string"},
		}
		for _, v := range []any{testInputs{}, &testInputs{}} {
			if got := ghaction.InputFields(v); !slices.Equal(got, want) {
				t.Errorf("InputFields(%T):\n got %+v\nwant %+v", v, got, want)
			}
		}
		if got := ghaction.OutputFields(testInputs{}); len(got) != 0 {
			t.Errorf("OutputFields of a struct without outputs = %+v, want none", got)
		}
	})

	t.Run("image.Inputs", func(t *testing.T) {
		t.Parallel()
		got := map[string]ghaction.Field{}
		for _, f := range ghaction.InputFields(image.Inputs{}) {
			if _, dup := got[f.Name]; dup {
				t.Errorf("input %q listed twice", f.Name)
			}
			got[f.Name] = f
		}
		want := []ghaction.Field{
			{Name: "image", GoName: "Image", Required: true, Kind: "string"},
			{Name: "base", GoName: "Base", Kind: "string"}, // required unless merge: Validate says so
			{Name: "platforms", GoName: "Platforms", Default: "linux/amd64,linux/arm64", Kind: "list"},
			{Name: "context", GoName: "Context", Default: ".", Kind: "string"},
			{Name: "tags", GoName: "Tags", Kind: "list", List: "lines"},
			{Name: "push", GoName: "Push", Default: "true", Kind: "boolean"},
			{Name: "push-by-digest", GoName: "PushByDigest", Default: "false", Kind: "boolean"},
			{Name: "merge", GoName: "Merge", Kind: "list", List: "lines"},
			{Name: "oci-layout", GoName: "OCILayout", Default: "oci-layout", Kind: "string"},
			{Name: "registry-username", GoName: "RegistryUsername", Kind: "string"},
			{Name: "registry-password", GoName: "RegistryPassword", Secret: true, Kind: "string"},
			{Name: "release-file", GoName: "ReleaseFile", Default: "gantry-release.json", Kind: "string"},
			{Name: "jobs", GoName: "Jobs", Default: "4", Kind: "integer"},
			{Name: "timeout", GoName: "Timeout", Default: "15m", Kind: "duration"},
		}
		for _, w := range want {
			if g, ok := got[w.Name]; !ok {
				t.Errorf("input %q missing from InputFields(image.Inputs{})", w.Name)
			} else if g != w {
				t.Errorf("input %q = %+v, want %+v", w.Name, g, w)
			}
		}
		for name, f := range got {
			switch f.GoName {
			case "Git", "Created", "Log", "Keychain", "Transport", "Backoff":
				t.Errorf("field %s is tagged input:\"-\" but listed as input %q", f.GoName, name)
			}
			if name == "-" || name == "" {
				t.Errorf("InputFields lists a field named %q (%s)", name, f.GoName)
			}
		}
		ptr := ghaction.InputFields(&image.Inputs{})
		if len(ptr) != len(got) {
			t.Errorf("InputFields(&image.Inputs{}) has %d fields, InputFields(image.Inputs{}) %d", len(ptr), len(got))
		}
	})

	t.Run("image.Outputs", func(t *testing.T) {
		t.Parallel()
		var names, goNames []string
		for _, f := range ghaction.OutputFields(image.Outputs{}) {
			names = append(names, f.Name)
			goNames = append(goNames, f.GoName)
		}
		want := []string{"digest", "image", "tags", "platform-digests", "release-file"}
		if !slices.Equal(names, want) {
			t.Errorf("OutputFields(image.Outputs{}) names = %q, want %q", names, want)
		}
		for _, hidden := range []string{"Platforms", "Base", "Pushed", "Uploaded"} {
			if slices.Contains(goNames, hidden) {
				t.Errorf("field %s is tagged output:\"-\" but listed", hidden)
			}
		}
	})
}

// Decode and InputFields must agree: a default InputFields reports is the one
// Decode applies.
func TestDecodeAppliesInputFieldsDefaults(t *testing.T) {
	t.Parallel()
	e, _ := newEnv(map[string]string{"INPUT_IMAGE": "ghcr.io/acme/app", "INPUT_BASE": "alpine"})
	var in image.Inputs
	if err := e.Decode(&in); err != nil {
		t.Fatalf("Decode: %v", err)
	}
	if in.Jobs != 4 || in.Timeout != 15*time.Minute || !in.Push || in.OCILayout != "oci-layout" ||
		in.ReleaseFile != "gantry-release.json" || in.Context != "." ||
		!slices.Equal(in.Platforms, []string{"linux/amd64", "linux/arm64"}) {
		t.Errorf("Decode(image.Inputs) defaults = %+v", in)
	}
	if err := in.Validate(); err != nil {
		t.Errorf("decoded defaults do not validate: %v", err)
	}
}
