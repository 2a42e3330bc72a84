package gitops

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"

	"go.yaml.in/yaml/v3"
	kyaml "sigs.k8s.io/kustomize/kyaml/yaml"
)

// image is a digest reference split in two.
type image struct {
	repository string // without tag
	digest     string // sha256:<64 hex>
}

func (i image) String() string { return i.repository + "@" + i.digest }

// short is repository@sha256:<12 hex>, for subjects.
func (i image) short() string {
	d := i.digest
	if len(d) > len("sha256:")+12 {
		d = d[:len("sha256:")+12]
	}
	return i.repository + "@" + d
}

var digestRE = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)

// parseImage reads input "image": repository[:tag]@sha256:<64 hex>.
func parseImage(s string) (image, error) {
	s = strings.TrimSpace(s)
	repo, digest, ok := strings.Cut(s, "@")
	if !ok || repo == "" {
		return image{}, fmt.Errorf(`input "image" %q is not a digest reference: promote repository@sha256:<64 hex> (the digest the build pushed), not a tag`, s)
	}
	if !digestRE.MatchString(digest) {
		return image{}, fmt.Errorf(`input "image" %q: %q is not a sha256 digest (want sha256: and 64 lowercase hex digits)`, s, digest)
	}
	// Drop a tag: a colon after the last slash (a colon before it is a
	// registry port).
	if i := strings.LastIndex(repo, ":"); i > strings.LastIndex(repo, "/") {
		repo = repo[:i]
	}
	return image{repository: repo, digest: digest}, nil
}

// fileEdit is the outcome of editing one file's content.
type fileEdit struct {
	before   []byte
	after    []byte // the new content; equal to before when !changed
	changed  bool
	previous string // digest before ("" if none)
	// previousImage is repository@digest before (the digest alone when
	// the file names no repository; "" if none).
	previousImage string
}

// state is what a target file says about the image.
type state struct {
	repository string // "" when the file does not name it
	digest     string
}

func (s state) image() string {
	switch {
	case s.digest == "":
		return ""
	case s.repository == "":
		return s.digest
	}
	return s.repository + "@" + s.digest
}

// parseDoc reads a one-document YAML file; an empty file is an empty map.
func parseDoc(content []byte, file string) (*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(content))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return &yaml.Node{Kind: yaml.DocumentNode, Content: []*yaml.Node{{Kind: yaml.MappingNode, Tag: "!!map"}}}, nil
		}
		return nil, fmt.Errorf("%s is not valid YAML: %v", file, err)
	}
	var more yaml.Node
	if err := dec.Decode(&more); err == nil {
		return nil, fmt.Errorf("%s holds more than one YAML document; point input \"gitops-path\" at a file with one", file)
	}
	if len(doc.Content) == 0 {
		doc.Content = []*yaml.Node{{Kind: yaml.MappingNode, Tag: "!!map"}}
	}
	root := doc.Content[0]
	if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
		*root = yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
	}
	if root.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("%s is not a YAML map at the top level", file)
	}
	return &doc, nil
}

func encodeDoc(doc *yaml.Node, orig []byte) ([]byte, error) {
	var buf bytes.Buffer
	style := kyaml.SequenceIndentStyle(kyaml.DeriveSeqIndentStyle(string(orig)))
	enc := kyaml.NewEncoderWithOptions(&buf, &kyaml.EncoderOptions{SeqIndent: style})
	if err := enc.Encode(doc); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// finish turns an edited document into the new file content, keeping the
// original layout (blank lines, spacing) where the change allows it.
func finish(doc *yaml.Node, orig []byte, file string) ([]byte, error) {
	before, err := parseDoc(orig, file)
	if err != nil {
		return nil, err
	}
	normBefore, err := encodeDoc(before, orig)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", file, err)
	}
	normAfter, err := encodeDoc(doc, orig)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", file, err)
	}
	if kept, ok := keepLayout(string(orig), string(normBefore), string(normAfter)); ok {
		// Trust it only if it reads back as exactly the edited document.
		if check, err := parseDoc([]byte(kept), file); err == nil {
			if again, err := encodeDoc(check, orig); err == nil && bytes.Equal(again, normAfter) {
				return []byte(kept), nil
			}
		}
	}
	return normAfter, nil
}

func mapGet(m *yaml.Node, key string) (*yaml.Node, int) {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1], i
		}
	}
	return nil, -1
}

func scalarValue(n *yaml.Node) string {
	if n == nil || n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		return ""
	}
	return n.Value
}

// mapSet sets key to the string value, keeping the key's place, comments
// and quoting; it appends the key when missing.
func mapSet(m *yaml.Node, key, value string) error {
	v, _ := mapGet(m, key)
	if v == nil {
		m.Content = append(m.Content,
			&yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: key},
			&yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: value})
		return nil
	}
	if v.Kind != yaml.ScalarNode {
		return fmt.Errorf("%q holds a %s, not a single value", key, kindName(v.Kind))
	}
	v.Value, v.Tag = value, "!!str"
	return nil
}

func mapDelete(m *yaml.Node, key string) {
	if _, i := mapGet(m, key); i >= 0 {
		m.Content = append(m.Content[:i], m.Content[i+2:]...)
	}
}

func kindName(k yaml.Kind) string {
	switch k {
	case yaml.MappingNode:
		return "map"
	case yaml.SequenceNode:
		return "list"
	case yaml.ScalarNode:
		return "value"
	case yaml.AliasNode:
		return "alias"
	}
	return "document"
}

// kustomizeName is the `images:` entry name the target uses.
func kustomizeName(t Target, img image) string {
	if t.KustomizeImage != "" {
		return t.KustomizeImage
	}
	return img.repository
}

// findImageEntry finds the `images:` entry named name, or whose newName
// is repository (when repository is not "").
func findImageEntry(images *yaml.Node, name, repository string) *yaml.Node {
	for _, e := range images.Content {
		if e.Kind != yaml.MappingNode {
			continue
		}
		n, _ := mapGet(e, "name")
		if scalarValue(n) == name {
			return e
		}
	}
	if repository == "" {
		return nil
	}
	for _, e := range images.Content {
		if e.Kind != yaml.MappingNode {
			continue
		}
		n, _ := mapGet(e, "newName")
		if scalarValue(n) == repository {
			return e
		}
	}
	return nil
}

// editKustomization points the kustomization's image at img.
func editKustomization(content []byte, file string, t Target, img image) (fileEdit, error) {
	doc, err := parseDoc(content, file)
	if err != nil {
		return fileEdit{}, err
	}
	root := doc.Content[0]
	name := kustomizeName(t, img)
	images, _ := mapGet(root, "images")
	if images != nil && images.Kind == yaml.ScalarNode && images.Tag == "!!null" {
		*images = yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
	}
	if images == nil {
		images = &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
		root.Content = append(root.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: "images"}, images)
	}
	if images.Kind != yaml.SequenceNode {
		return fileEdit{}, fmt.Errorf("%s: \"images\" is a %s, not a list", file, kindName(images.Kind))
	}
	entry := findImageEntry(images, name, img.repository)
	var res fileEdit
	if entry == nil {
		entry = &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
		_ = mapSet(entry, "name", name)
		images.Content = append(images.Content, entry)
	} else {
		d, _ := mapGet(entry, "digest")
		res.previous = scalarValue(d)
		nn, _ := mapGet(entry, "newName")
		nt, _ := mapGet(entry, "newTag")
		n, _ := mapGet(entry, "name")
		repoOK := scalarValue(nn) == img.repository || (nn == nil && scalarValue(n) == img.repository)
		if res.previous == img.digest && repoOK && nt == nil {
			return fileEdit{after: content, previous: res.previous}, nil
		}
	}
	n, _ := mapGet(entry, "name")
	if nn, _ := mapGet(entry, "newName"); nn != nil || scalarValue(n) != img.repository {
		if err := mapSet(entry, "newName", img.repository); err != nil {
			return fileEdit{}, fmt.Errorf("%s: image %s: %v", file, name, err)
		}
	}
	mapDelete(entry, "newTag")
	if err := mapSet(entry, "digest", img.digest); err != nil {
		return fileEdit{}, fmt.Errorf("%s: image %s: %v", file, name, err)
	}
	out, err := finish(doc, content, file)
	if err != nil {
		return fileEdit{}, err
	}
	res.after, res.changed = out, true
	return res, nil
}

// readKustomization says which image the kustomization names. With no
// kustomize-image set, a single `images:` entry is the one.
func readKustomization(content []byte, file string, t Target) (state, error) {
	doc, err := parseDoc(content, file)
	if err != nil {
		return state{}, err
	}
	images, _ := mapGet(doc.Content[0], "images")
	if images == nil || images.Kind != yaml.SequenceNode {
		return state{}, nil
	}
	var entry *yaml.Node
	if t.KustomizeImage != "" {
		entry = findImageEntry(images, t.KustomizeImage, t.KustomizeImage)
	} else if len(images.Content) == 1 {
		entry = images.Content[0]
	} else if len(images.Content) > 1 {
		return state{}, fmt.Errorf(`%s lists %d images: set input "kustomize-image" to the name of the one Gantry promotes`, file, len(images.Content))
	}
	if entry == nil || entry.Kind != yaml.MappingNode {
		return state{}, nil
	}
	d, _ := mapGet(entry, "digest")
	nn, _ := mapGet(entry, "newName")
	n, _ := mapGet(entry, "name")
	repo := scalarValue(nn)
	if repo == "" {
		repo = scalarValue(n)
	}
	return state{repository: repo, digest: scalarValue(d)}, nil
}

// splitKey splits a dotted values key, naming the input on bad ones.
func splitKey(input, key string) ([]string, error) {
	parts := strings.Split(key, ".")
	for _, p := range parts {
		if p == "" {
			return nil, fmt.Errorf(`input %q %q is not a dotted key like image.digest`, input, key)
		}
	}
	return parts, nil
}

// valuesLeaf finds (create: makes) the map holding the key's last part.
func valuesLeaf(root *yaml.Node, input string, parts []string, create bool, file string) (*yaml.Node, error) {
	m := root
	for i, p := range parts[:len(parts)-1] {
		v, _ := mapGet(m, p)
		switch {
		case v == nil || (v.Kind == yaml.ScalarNode && v.Tag == "!!null"):
			if !create {
				return nil, nil
			}
			nm := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
			if v == nil {
				m.Content = append(m.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: p}, nm)
			} else {
				*v = *nm
				nm = v
			}
			m = nm
		case v.Kind == yaml.MappingNode:
			m = v
		default:
			return nil, fmt.Errorf(`input %q: %s in %s is a %s, not a map`, input, strings.Join(parts[:i+1], "."), file, kindName(v.Kind))
		}
	}
	return m, nil
}

// editValues sets the Helm values keys.
func editValues(content []byte, file string, t Target, img image) (fileEdit, error) {
	doc, err := parseDoc(content, file)
	if err != nil {
		return fileEdit{}, err
	}
	root := doc.Content[0]
	type set struct{ input, key, value string }
	sets := []set{{"image-path", t.ValuesKey, img.digest}}
	if t.RepositoryKey != "" {
		sets = append(sets, set{"image-repository-path", t.RepositoryKey, img.repository})
	}
	var res fileEdit
	changed := false
	for i, s := range sets {
		parts, err := splitKey(s.input, s.key)
		if err != nil {
			return fileEdit{}, err
		}
		m, err := valuesLeaf(root, s.input, parts, true, file)
		if err != nil {
			return fileEdit{}, err
		}
		leaf := parts[len(parts)-1]
		v, _ := mapGet(m, leaf)
		if v != nil && v.Kind != yaml.ScalarNode {
			return fileEdit{}, fmt.Errorf(`input %q: %s in %s is a %s, not a single value`, s.input, s.key, file, kindName(v.Kind))
		}
		if i == 0 {
			res.previous = scalarValue(v)
		}
		if scalarValue(v) == s.value {
			continue
		}
		changed = true
		if err := mapSet(m, leaf, s.value); err != nil {
			return fileEdit{}, fmt.Errorf(`input %q: %s in %s: %v`, s.input, s.key, file, err)
		}
	}
	if !changed {
		return fileEdit{after: content, previous: res.previous}, nil
	}
	out, err := finish(doc, content, file)
	if err != nil {
		return fileEdit{}, err
	}
	res.after, res.changed = out, true
	return res, nil
}

// readValues says which image the values file names.
func readValues(content []byte, file string, t Target) (state, error) {
	doc, err := parseDoc(content, file)
	if err != nil {
		return state{}, err
	}
	get := func(input, key string) (string, error) {
		if key == "" {
			return "", nil
		}
		parts, err := splitKey(input, key)
		if err != nil {
			return "", err
		}
		m, err := valuesLeaf(doc.Content[0], input, parts, false, file)
		if err != nil || m == nil {
			return "", err
		}
		v, _ := mapGet(m, parts[len(parts)-1])
		return scalarValue(v), nil
	}
	d, err := get("image-path", t.ValuesKey)
	if err != nil {
		return state{}, err
	}
	r, err := get("image-repository-path", t.RepositoryKey)
	if err != nil {
		return state{}, err
	}
	return state{repository: r, digest: d}, nil
}

// applyEdit edits the target file's content for img.
func applyEdit(content []byte, file string, t Target, img image) (fileEdit, error) {
	var e fileEdit
	var err error
	if t.ValuesKey != "" {
		e, err = editValues(content, file, t, img)
	} else {
		e, err = editKustomization(content, file, t, img)
	}
	e.before = content
	return e, err
}

// readState reads what the target file says.
func readState(content []byte, file string, t Target) (state, error) {
	if t.ValuesKey != "" {
		return readValues(content, file, t)
	}
	return readKustomization(content, file, t)
}
