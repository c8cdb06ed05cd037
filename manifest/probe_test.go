package manifest

import (
	"strings"
	"testing"
)

func TestProbeProblems(t *testing.T) {
	tests := []struct {
		name, probes string
		want         string // FIELD: REASON; "" for none
	}{
		{"good", "[{port: 80, path: /healthz}]", ""},
		{"query allowed", "[{port: 80, path: '/api/health?deep=1'}]", ""},
		{"no port", "[{path: /healthz}]", "app.container.probes[0].port: missing"},
		{"port not published", "[{port: 81, path: /x}]", "app.container.probes[0].port: 81 is not the container port of a published TCP port"},
		{"port only exposed", "[{port: 53, path: /x}]", "app.container.probes[0].port: 53 is not the container port of a published TCP port"},
		{"host port is not the container port", "[{port: 8080, path: /x}]", "app.container.probes[0].port: 8080 is not"},
		{"port twice", "[{port: 80, path: /a}, {port: 80, path: /b}]", "app.container.probes[1].port: port 80 is already probed by app.container.probes[0]"},
		{"port too big", "[{port: 70000, path: /x}]", "app.container.probes[0].port:"},
		{"no path", "[{port: 80}]", `app.container.probes[0].path: "": missing`},
		{"relative path", "[{port: 80, path: healthz}]", `app.container.probes[0].path: "healthz": must start with /`},
		{"space in path", "[{port: 80, path: '/a b'}]", `app.container.probes[0].path: "/a b": must not contain a space or #`},
		{"unknown key", "[{port: 80, path: /x, scheme: https}]", "app.container.probes[0].scheme: unknown key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := mutate("    probes: [{port: 80, path: /healthz}]", "    probes: "+tt.probes)
			a, ps := Parse("web.yaml", []byte(in))
			if len(ps) == 0 {
				ps = Validate("web.yaml", a, roots)
			}
			if tt.want == "" {
				if len(ps) != 0 {
					t.Fatalf("problems %v", ps)
				}
				return
			}
			if len(ps) != 1 || !strings.HasPrefix(ps[0].String(), "web.yaml: "+tt.want) {
				t.Fatalf("problems %v, want one starting with %q", ps, "web.yaml: "+tt.want)
			}
		})
	}
}
