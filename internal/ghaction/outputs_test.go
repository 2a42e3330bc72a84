package ghaction_test

import (
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gantry-ci/gantry/internal/ghaction"
	"github.com/gantry-ci/gantry/internal/image"
)

// readOutputs parses the GITHUB_OUTPUT file at path.
func readOutputs(t *testing.T, path string) map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got, err := ghaction.ParseOutputFile(f)
	if err != nil {
		t.Fatalf("ParseOutputFile: %v", err)
	}
	return got
}

func TestEncodeRoundTrip(t *testing.T) {
	t.Parallel()
	type outputs struct {
		Digest  string            `output:"digest"`
		Tags    []string          `output:"tags"`
		ByPlat  map[string]string `output:"platform-digests"`
		Notes   string            `output:"notes"`
		Empty   string            `output:"empty"`
		Pushed  bool              `output:"pushed"`
		Count   int               `output:"count"`
		Bytes   int64             `output:"bytes"`
		Hidden  string            `output:"-"`
		Untaged string
	}
	src := outputs{
		Digest: "sha256:4b825dc642cb6eb9a060e54bf8d69288fbee4904e0a4d5e3c3b4d8ad0e1f2a3b",
		Tags:   []string{"ghcr.io/acme/prompt-builder:1.2.3", "ghcr.io/acme/prompt-builder:1.2", "ghcr.io/acme/prompt-builder:latest"},
		ByPlat: map[string]string{
			"linux/arm64": "sha256:bbbb",
			"linux/amd64": "sha256:aaaa",
		},
		Notes:   "line one\n\nline three, with = and << inside\n",
		Pushed:  true,
		Count:   3,
		Bytes:   1 << 40,
		Hidden:  "not an output",
		Untaged: "not an output either",
	}
	wantMap := map[string]string{
		"digest":           src.Digest,
		"tags":             strings.Join(src.Tags, "\n"),
		"platform-digests": `{"linux/amd64":"sha256:aaaa","linux/arm64":"sha256:bbbb"}`,
		"notes":            src.Notes,
		"empty":            "",
		"pushed":           "true",
		"count":            "3",
		"bytes":            "1099511627776",
	}

	for _, tt := range []struct {
		name string
		v    any
	}{{"struct", src}, {"pointer", &src}} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "github_output")
			// An earlier step of the same job already wrote to the file.
			if err := os.WriteFile(path, []byte("dir=/home/runner/work/_actions/gantry\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			e, w := newEnv(map[string]string{"GITHUB_OUTPUT": path})
			if err := e.Encode(tt.v); err != nil {
				t.Fatalf("Encode: %v", err)
			}
			if w.Len() != 0 {
				t.Errorf("Encode wrote to the log: %q", w.String())
			}
			got := readOutputs(t, path)
			want := maps.Clone(wantMap)
			want["dir"] = "/home/runner/work/_actions/gantry"
			if !maps.Equal(got, want) {
				for _, k := range slices.Sorted(maps.Keys(got)) {
					if got[k] != want[k] {
						t.Errorf("output %q = %q, want %q", k, got[k], want[k])
					}
				}
				t.Errorf("outputs: got keys %q, want %q", slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(want)))
			}

			// What a later step reads back is what the stage produced.
			if tags := strings.Split(got["tags"], "\n"); !slices.Equal(tags, src.Tags) {
				t.Errorf("tags read back = %q, want %q", tags, src.Tags)
			}
			var byPlat map[string]string
			if err := json.Unmarshal([]byte(got["platform-digests"]), &byPlat); err != nil || !maps.Equal(byPlat, src.ByPlat) {
				t.Errorf("platform-digests read back = %v (%v), want %v", byPlat, err, src.ByPlat)
			}
		})
	}
}

func TestEncodeImageOutputs(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "github_output")
	e, _ := newEnv(map[string]string{"GITHUB_OUTPUT": path})
	out := image.Outputs{
		Digest:          "sha256:1111",
		Image:           "ghcr.io/acme/prompt-builder@sha256:1111",
		Tags:            []string{"ghcr.io/acme/prompt-builder:main"},
		PlatformDigests: map[string]string{"linux/amd64": "sha256:2222"},
		ReleaseFile:     "/home/runner/work/app/gantry-release.json",
		Base:            "not an output",
		Pushed:          true,
		Uploaded:        42,
	}
	if err := e.Encode(out); err != nil {
		t.Fatalf("Encode: %v", err)
	}
	got := readOutputs(t, path)
	// The outputs are exactly the ones action.yml declares, by the same names.
	var names []string
	for _, f := range ghaction.OutputFields(image.Outputs{}) {
		names = append(names, f.Name)
	}
	if keys := slices.Sorted(maps.Keys(got)); !slices.Equal(keys, slices.Sorted(slices.Values(names))) {
		t.Errorf("Encode(image.Outputs) wrote %q, want %q", keys, names)
	}
	if got["image"] != out.Image || got["platform-digests"] != `{"linux/amd64":"sha256:2222"}` {
		t.Errorf("outputs = %v", got)
	}
}

func TestEncodeError(t *testing.T) {
	t.Parallel()
	e, _ := newEnv(map[string]string{"GITHUB_OUTPUT": filepath.Join(t.TempDir(), "out")})
	bad := struct {
		Fn func() `output:"callback"`
	}{Fn: func() {}}
	err := e.Encode(bad)
	if err == nil || !strings.Contains(err.Error(), `output "callback"`) {
		t.Errorf("Encode(func field) error = %v, want one naming output \"callback\"", err)
	}
}

func TestFormatOutput(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		v    any
		want string
	}{
		{"string", "a b", "a b"},
		{"multi-line string", "a\nb", "a\nb"},
		{"slice one per line", []string{"x", "y"}, "x\ny"},
		{"empty slice", []string(nil), ""},
		{"bool", false, "false"},
		{"int", -7, "-7"},
		{"int64", int64(1) << 40, "1099511627776"},
		{"map as sorted JSON", map[string]string{"b": "2", "a": "1"}, `{"a":"1","b":"2"}`},
		{"struct as JSON", struct {
			A int `json:"a"`
		}{1}, `{"a":1}`},
	}
	for _, tt := range tests {
		got, err := ghaction.FormatOutput(tt.v)
		if err != nil || got != tt.want {
			t.Errorf("%s: FormatOutput(%#v) = %q, %v; want %q", tt.name, tt.v, got, err, tt.want)
		}
	}
}

func TestParseOutputFile(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		in      string
		want    map[string]string
		wantErr []string // each in the error
	}{
		{
			name: "name=value lines",
			in:   "a=1\nb=two words\n\nc=\n",
			want: map[string]string{"a": "1", "b": "two words", "c": ""},
		},
		{
			name: "value holding = and <<",
			in:   "url=https://x/?a=b\nshift=1<<3\n",
			want: map[string]string{"url": "https://x/?a=b", "shift": "1<<3"},
		},
		{
			name: "delimited blocks",
			in:   "tags<<EOF\na:1\n\na:2\nEOF\nempty<<ghadelimiter_1\n\nghadelimiter_1\nlast=x",
			want: map[string]string{"tags": "a:1\n\na:2", "empty": "", "last": "x"},
		},
		{
			name: "a delimiter inside a line does not close the block",
			in:   "v<<END\nnot END yet\nEND\n",
			want: map[string]string{"v": "not END yet"},
		},
		{
			name: "later value wins",
			in:   "a=1\na=2\n",
			want: map[string]string{"a": "2"},
		},
		{
			name: "empty file",
			in:   "",
			want: map[string]string{},
		},
		{
			name:    "unterminated delimiter",
			in:      "digest=sha256:1\ntags<<EOF\nghcr.io/acme/app:1\n",
			wantErr: []string{`"tags"`, `"EOF"`, "never closes"},
		},
		{
			name:    "neither form",
			in:      "a=1\njust some text\n",
			wantErr: []string{`"just some text"`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := ghaction.ParseOutputFile(strings.NewReader(tt.in))
			if tt.wantErr != nil {
				if err == nil {
					t.Fatalf("ParseOutputFile = %v, want an error", got)
				}
				for _, w := range tt.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not contain %s", err, w)
					}
				}
				return
			}
			if err != nil || !maps.Equal(got, tt.want) {
				t.Errorf("ParseOutputFile(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestSummary(t *testing.T) {
	t.Parallel()
	const md = "### Built ghcr.io/acme/prompt-builder\n\n| Platform | Digest |\n|---|---|\n| linux/amd64 | `sha256:1111` |\n"

	t.Run("GITHUB_STEP_SUMMARY set", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join(t.TempDir(), "step_summary")
		e, w := newEnv(map[string]string{"GITHUB_STEP_SUMMARY": path})
		e.Summary(md)
		e.Summary("second part")
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("summary file: %v", err)
		}
		if got, want := string(b), md+"\n"+"second part\n"; got != want {
			t.Errorf("summary file = %q, want %q", got, want)
		}
		if w.Len() != 0 {
			t.Errorf("Summary also wrote to the log: %q", w.String())
		}
	})

	t.Run("no GITHUB_STEP_SUMMARY", func(t *testing.T) {
		t.Parallel()
		e, w := newEnv(map[string]string{})
		e.Summary(md)
		if w.String() != md {
			t.Errorf("log = %q, want the summary %q", w.String(), md)
		}
	})
}
