package manifest

import (
	"reflect"
	"strings"
	"testing"

	"github.com/lockstep/lockstep/policy"
)

// FuzzParseValidate: any bytes given as a manifest are parsed and validated without a panic, within
// the size and depth bounds; every problem names the file and has a reason, on one line (lockstepctl
// validate prints one line per problem; a report carries them); the result does not depend on
// anything but the input; and a manifest accepted once is accepted again with the same content. The
// operator's policy (CheckPolicy) holds a valid manifest: each refusal names the file, the field and
// the policy key that would allow it, and a policy granting everything refuses nothing that the
// empty policy accepts (grants only ever take refusals away).
// Seeds: testdata/fuzz/FuzzParseValidate (the demo catalog, the documented example) and these.
func FuzzParseValidate(f *testing.F) {
	f.Add([]byte(good))
	f.Add([]byte("app:\n  id: x\n  nme: y\n"))
	f.Add([]byte("app: {id: a, name: A, version: '1', container: {image: 'localhost/a:1', ports: ['1:2/udp'], volumes: ['${APP_DATA}/d:/d:ro']}, requires: {apps: [b]}}\n"))
	f.Add([]byte("a: &a [*a]\n"))
	f.Add([]byte("app:\n  id: \"a\\nb\"\n  name: \"\\0\"\n"))
	f.Add([]byte(hostile))
	f.Add([]byte("app: {id: a, name: A, version: '1', container: {image: 'localhost/a:1', network: lockstep-b_exports, user: '00:0', volumes: ['/var/lib/lockstep/apps/b:/b:U']}, requires: {optional: [b]}}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		const file = "/etc/lockstep/apps.d/fuzz.yaml"
		app, ps := Parse(file, data)
		if app == nil && len(ps) == 0 {
			t.Fatal("no app and no problem")
		}
		if app != nil {
			ps = append(ps, Validate(file, app, roots)...)
		}
		if app != nil && len(ps) == 0 {
			denied := CheckPolicy(file, app, roots)
			for _, p := range denied {
				if p.File != file || p.Field == "" || !strings.Contains(p.Reason, "to allow it: apps."+app.ID+".") {
					t.Fatalf("policy refusal without file, field or the key that allows it: %#v", p)
				}
			}
			granted := roots
			granted.Policy = grantAll
			for _, p := range CheckPolicy(file, app, granted) {
				if !reflect.DeepEqual(p, Problem{}) && !containsProblem(denied, p) {
					t.Fatalf("granting everything refused what the empty policy did not: %v", p)
				}
				if !strings.HasSuffix(p.Field, ".network") {
					t.Fatalf("refused under a policy granting everything but networks: %v", p)
				}
			}
			ps = append(ps, denied...)
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
			if len(ps2) == 0 {
				ps2 = append(ps2, CheckPolicy(file, app2, roots)...)
			}
		}
		if !reflect.DeepEqual(ps, ps2) || !reflect.DeepEqual(app, app2) {
			t.Fatalf("two parses of the same bytes differ:\n%v\n%v", ps, ps2)
		}
	})
}

// grantAll grants every capability the manifest may spell, the host's network, root, and every
// volume and relabel root.
var grantAll = &policy.Policy{File: "/etc/lockstep/policy.yaml", AllApps: policy.Grants{
	Capabilities: []string{"ALL"}, HostNetwork: true, RootUser: true, VolumeRoots: []string{"/"}, RelabelRoots: []string{"/"},
}}

func containsProblem(ps Problems, p Problem) bool {
	for _, q := range ps {
		if q == p {
			return true
		}
	}
	return false
}
