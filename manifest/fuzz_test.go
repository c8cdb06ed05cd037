package manifest

import (
	"reflect"
	"strings"
	"testing"
)

// FuzzParseValidate: any bytes given as a manifest are parsed and validated without a panic, within
// the size and depth bounds; every problem names the file and has a reason, on one line (lockstepctl
// validate prints one line per problem; a report carries them); the result does not depend on
// anything but the input; and a manifest accepted once is accepted again with the same content.
// Seeds: testdata/fuzz/FuzzParseValidate (the demo catalog, the documented example) and these.
func FuzzParseValidate(f *testing.F) {
	f.Add([]byte(good))
	f.Add([]byte("app:\n  id: x\n  nme: y\n"))
	f.Add([]byte("app: {id: a, name: A, version: '1', container: {image: 'localhost/a:1', ports: ['1:2/udp'], volumes: ['${APP_DATA}/d:/d:ro']}, requires: {apps: [b]}}\n"))
	f.Add([]byte("a: &a [*a]\n"))
	f.Add([]byte("app:\n  id: \"a\\nb\"\n  name: \"\\0\"\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		const file = "/etc/lockstep/apps.d/fuzz.yaml"
		app, ps := Parse(file, data)
		if app == nil && len(ps) == 0 {
			t.Fatal("no app and no problem")
		}
		if app != nil {
			ps = append(ps, Validate(file, app, roots)...)
		}
		for _, p := range ps {
			if p.File != file || p.Reason == "" {
				t.Fatalf("problem without file or reason: %#v", p)
			}
			if strings.ContainsAny(p.String(), "\n\r") {
				t.Fatalf("problem on more than one line: %q", p.String())
			}
		}
		app2, ps2 := Parse(file, data)
		if app2 != nil {
			ps2 = append(ps2, Validate(file, app2, roots)...)
		}
		if !reflect.DeepEqual(ps, ps2) || !reflect.DeepEqual(app, app2) {
			t.Fatalf("two parses of the same bytes differ:\n%v\n%v", ps, ps2)
		}
	})
}
