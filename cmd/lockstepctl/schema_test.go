package main

import (
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"
)

// docSchema returns the JSON schema documented in docs/cli.md after "<!-- schema: NAME -->".
func docSchema(t *testing.T, name string) map[string]any {
	t.Helper()
	b, err := os.ReadFile("../../docs/cli.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)<!-- schema: " + name + " -->\\s*```json\n(.*?)```").FindSubmatch(b)
	if m == nil {
		t.Fatalf("docs/cli.md has no schema %q", name)
	}
	var s map[string]any
	if err := json.Unmarshal(m[1], &s); err != nil {
		t.Fatalf("schema %q in docs/cli.md is not JSON: %v", name, err)
	}
	return s
}

// validate checks doc against the subset of JSON Schema that docs/cli.md uses: type, required,
// properties, additionalProperties false, items, minimum, format date-time and local $refs.
func validate(root, s map[string]any, v any, path string) []string {
	if ref, ok := s["$ref"].(string); ok {
		def := strings.TrimPrefix(ref, "#/$defs/")
		return validate(root, root["$defs"].(map[string]any)[def].(map[string]any), v, path)
	}
	var errs []string
	bad := func(format string, args ...any) { errs = append(errs, path+": "+fmt.Sprintf(format, args...)) }
	switch s["type"] {
	case "object":
		obj, ok := v.(map[string]any)
		if !ok {
			bad("not an object")
			return errs
		}
		props, _ := s["properties"].(map[string]any)
		for _, r := range s["required"].([]any) {
			if _, ok := obj[r.(string)]; !ok {
				bad("required key %q missing", r)
			}
		}
		keys := make([]string, 0, len(obj))
		for k := range obj {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			ps, ok := props[k].(map[string]any)
			if !ok {
				if s["additionalProperties"] == false {
					bad("key %q is not in the schema", k)
				}
				continue
			}
			errs = append(errs, validate(root, ps, obj[k], path+"."+k)...)
		}
	case "array":
		arr, ok := v.([]any)
		if !ok {
			bad("not an array (null?)")
			return errs
		}
		for i, x := range arr {
			errs = append(errs, validate(root, s["items"].(map[string]any), x, fmt.Sprintf("%s[%d]", path, i))...)
		}
	case "string":
		str, ok := v.(string)
		if !ok {
			bad("not a string")
			return errs
		}
		if s["format"] == "date-time" {
			if _, err := time.Parse(time.RFC3339Nano, str); err != nil {
				bad("not a date-time: %v", err)
			}
		}
	case "integer":
		n, ok := v.(float64)
		if !ok || n != float64(int64(n)) {
			bad("not an integer")
			return errs
		}
		if min, ok := s["minimum"].(float64); ok && n < min {
			bad("below %v", min)
		}
	default:
		bad("schema type %v not supported by this checker", s["type"])
	}
	return errs
}

// checkAgainstDoc validates out against docs/cli.md's schema name.
func checkAgainstDoc(t *testing.T, name, out string) {
	t.Helper()
	s := docSchema(t, name)
	var v any
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	if errs := validate(s, s, v, name); len(errs) > 0 {
		t.Fatalf("output does not match the %s schema of docs/cli.md:\n%s\n%s", name, strings.Join(errs, "\n"), out)
	}
}

// TestSchemaChecker: the checker itself rejects what the schema forbids.
func TestSchemaChecker(t *testing.T) {
	s := docSchema(t, "report")
	good := `{"pass_id":1,"trigger":"dbus","started_at":"2026-01-02T03:04:05.123456Z","finished_at":"2026-01-02T03:04:06Z",
	  "actions":[{"app":"a","action":"start","cause":"c"}],"failures":[],"apps":[{"id":"a","state":"running","health":"unknown","image":"i","container_id":"x","last_action":"start"}],"companions":[],"companion_mode":"quadlet",
	  "host_problems":[{"code":"kube-no-catatonit","message":"m","fix":"install catatonit (Debian)","apps":[]}]}`
	var v any
	json.Unmarshal([]byte(good), &v)
	if errs := validate(s, s, v, "report"); len(errs) > 0 {
		t.Fatalf("good report refused: %v", errs)
	}
	for _, bad := range []string{
		strings.Replace(good, `"pass_id":1,`, ``, 1),
		strings.Replace(good, `"failures":[]`, `"failures":null`, 1),
		strings.Replace(good, `"trigger":"dbus"`, `"trigger":"dbus","extra":1`, 1),
		strings.Replace(good, `"started_at":"2026-01-02T03:04:05.123456Z"`, `"started_at":"yesterday"`, 1),
		strings.Replace(good, `"container_id":"x",`, ``, 1),
		strings.Replace(good, `"pass_id":1`, `"pass_id":-1`, 1),
		strings.Replace(good, `"apps":[]}]`, `"apps":null}]`, 1),
	} {
		json.Unmarshal([]byte(bad), &v)
		if errs := validate(s, s, v, "report"); len(errs) == 0 {
			t.Errorf("accepted %s", bad)
		}
	}
	docSchema(t, "plan")
}
