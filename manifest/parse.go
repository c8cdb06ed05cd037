package manifest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/lockstep/lockstep/internal/suggest"
)

// MaxFileSize bounds a manifest file; larger files are rejected before they are parsed.
const MaxFileSize = 1 << 20

// maxDepth bounds the nesting of a manifest; no valid manifest comes near it.
const maxDepth = 32

// Problem is one reason a manifest is not acceptable: a file, a field path and a reason.
type Problem struct {
	File   string
	Field  string
	Reason string
}

func (p Problem) String() string {
	f := p.Field
	if f == "" {
		f = "-"
	}
	return fmt.Sprintf("%s: %s: %s", p.File, f, p.Reason)
}

// Problems is a list of problems that is also an error.
type Problems []Problem

func (ps Problems) Error() string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return strings.Join(s, "\n")
}

// Parse decodes one manifest strictly: unknown keys, wrong types and duplicate keys are problems, and a
// key close to a known one gets a suggestion. It does not validate values; see Validate.
func Parse(file string, data []byte) (*App, Problems) {
	if len(data) > MaxFileSize {
		return nil, Problems{{file, "", fmt.Sprintf("file is larger than %d bytes", MaxFileSize)}}
	}
	if bytes.IndexByte(data, 0) >= 0 {
		return nil, Problems{{file, "", "file contains NUL bytes; not a YAML manifest"}}
	}
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, Problems{{file, "", "file is empty"}}
		}
		return nil, Problems{{file, "", "not valid YAML: " + strings.TrimPrefix(err.Error(), "yaml: ")}}
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return nil, Problems{{file, "", "more than one YAML document; a manifest is one document"}}
	}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	w := walker{file: file}
	w.check(root, reflect.TypeOf(File{}), "", 0)
	if len(w.problems) > 0 {
		return nil, w.problems
	}
	var f File
	if err := root.Decode(&f); err != nil {
		return nil, Problems{{file, "", strings.TrimPrefix(err.Error(), "yaml: ")}}
	}
	if root.Kind != yaml.MappingNode || len(root.Content) == 0 {
		return nil, Problems{{file, "app", "missing: a manifest has an app: section at its root"}}
	}
	return &f.App, nil
}

type walker struct {
	file     string
	problems Problems
}

func (w *walker) add(field string, n *yaml.Node, format string, args ...any) {
	reason := fmt.Sprintf(format, args...)
	if n != nil && n.Line > 0 {
		reason += fmt.Sprintf(" (line %d)", n.Line)
	}
	w.problems = append(w.problems, Problem{w.file, field, reason})
}

var durationType = reflect.TypeOf(Duration(0))

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// check walks n against the Go type t, reporting every mismatch instead of stopping at the first.
func (w *walker) check(n *yaml.Node, t reflect.Type, path string, depth int) {
	if depth > maxDepth {
		w.add(path, n, "nested more than %d levels", maxDepth)
		return
	}
	if n.Kind == yaml.AliasNode {
		w.add(path, n, "YAML aliases are not allowed in manifests")
		return
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return // an empty value leaves the field at its default
	}
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case t == durationType:
		if n.Kind != yaml.ScalarNode {
			w.add(path, n, "want a duration such as 30s or 2m")
		} else if d, err := time.ParseDuration(n.Value); err != nil || d < 0 {
			w.add(path, n, "want a duration such as 30s or 2m, got %q", n.Value)
		}
		return
	case t.Kind() == reflect.Struct:
		if n.Kind != yaml.MappingNode {
			w.add(path, n, "want a mapping of keys, got %s", kindName(n))
			return
		}
		fields := map[string]reflect.Type{}
		var names []string
		for i := 0; i < t.NumField(); i++ {
			tag := strings.Split(t.Field(i).Tag.Get("yaml"), ",")[0]
			if tag == "" || tag == "-" {
				continue
			}
			fields[tag] = t.Field(i).Type
			names = append(names, tag)
		}
		seen := map[string]bool{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			key := k.Value
			if seen[key] {
				w.add(join(path, key), k, "duplicate key")
				continue
			}
			seen[key] = true
			ft, ok := fields[key]
			if !ok {
				msg := "unknown key"
				if s := suggest.Closest(key, names); s != "" {
					msg += fmt.Sprintf(" (did you mean %q?)", s)
				}
				w.add(join(path, key), k, "%s", msg)
				continue
			}
			w.check(v, ft, join(path, key), depth+1)
		}
	case t.Kind() == reflect.Map:
		if n.Kind != yaml.MappingNode {
			w.add(path, n, "want a mapping of keys, got %s", kindName(n))
			return
		}
		seen := map[string]bool{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Kind != yaml.ScalarNode {
				w.add(path, k, "keys must be plain strings")
				continue
			}
			if seen[k.Value] {
				w.add(join(path, k.Value), k, "duplicate key")
				continue
			}
			seen[k.Value] = true
			w.check(v, t.Elem(), join(path, k.Value), depth+1)
		}
	case t.Kind() == reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			w.add(path, n, "want a list, got %s", kindName(n))
			return
		}
		for i, c := range n.Content {
			w.check(c, t.Elem(), fmt.Sprintf("%s[%d]", path, i), depth+1)
		}
	default:
		if n.Kind != yaml.ScalarNode {
			w.add(path, n, "want a single value, got %s", kindName(n))
			return
		}
		switch t.Kind() {
		case reflect.Bool:
			if _, err := strconv.ParseBool(n.Value); err != nil || n.Tag != "!!bool" {
				w.add(path, n, "want true or false, got %q", n.Value)
			}
		case reflect.Int:
			if _, err := strconv.Atoi(n.Value); err != nil {
				w.add(path, n, "want a whole number, got %q", n.Value)
			}
		case reflect.Float64:
			if _, err := strconv.ParseFloat(n.Value, 64); err != nil {
				w.add(path, n, "want a number, got %q", n.Value)
			}
		case reflect.String:
			// every scalar is acceptable as a string
		}
	}
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return fmt.Sprintf("%q", n.Value)
	}
	return "something else"
}
