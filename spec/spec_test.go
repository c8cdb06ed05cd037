package spec

import (
	"fmt"
	"strings"
	"testing"

	"github.com/lockstep/lockstep/manifest"
)

var testRoots = manifest.Roots{DataRoot: "/var/lib/lockstep/apps"}

func app(id string, deps ...string) *manifest.Loaded {
	return &manifest.Loaded{App: manifest.App{ID: id, Name: id, Version: "1",
		Container: manifest.Container{Image: "localhost/" + id + ":1"},
		Requires:  manifest.Requires{Apps: deps}}}
}

func TestHashIsStableAndIgnoresDefaultsAndOrder(t *testing.T) {
	a := app("web")
	a.Container.Env = map[string]string{"B": "2", "A": "1"}
	a.Container.Ports = []string{"9090:90", "8080:80"}
	b := app("web")
	b.Container.Env = map[string]string{"A": "1", "B": "2"}
	b.Container.Ports = []string{"8080:80/tcp", "9090:90"}
	b.Container.Restart = "no"
	b.Container.StopGracePeriod = manifest.Duration(DefaultStopTimeout)
	ha, hb := DesiredFor(a, testRoots).Hash(), DesiredFor(b, testRoots).Hash()
	if ha != hb {
		t.Fatalf("equivalent specs hash differently: %s %s", ha, hb)
	}
	// Scheme v1 is frozen: this value must never change, or every container would be recreated on
	// upgrade. If this fails, the change needs a new scheme instead.
	// (The frozen request names its network: the default network changed from bridge to the app's
	// own network before the first release.)
	web := func() *manifest.Loaded {
		a := app("web")
		a.Container.Network = "bridge"
		return a
	}
	if got := DesiredFor(web(), testRoots).Hash(); got != frozenV1 {
		t.Fatalf("hash scheme v1 changed: %s, was %s", got, frozenV1)
	}
	// Fields that do not reach the container (name, version, description, companions, exports,
	// provides, hooks) are not hashed.
	c := web()
	c.Name, c.Version, c.Description = "Other", "2", "new text"
	c.Companions = []manifest.Companion{{ID: "ui", Image: "x:1"}}
	c.Exports = map[string]manifest.Export{"port": {Value: "80"}}
	c.Provides = []string{"www"}
	c.Hooks.PreStart = []manifest.TemplateHook{{Template: "t", Path: "p"}}
	if DesiredFor(c, testRoots).Hash() != frozenV1 {
		t.Fatal("metadata changed the hash")
	}
	d := web()
	d.Container.Command = []string{"run"}
	if DesiredFor(d, testRoots).Hash() == frozenV1 {
		t.Fatal("command change did not change the hash")
	}
}

const frozenV1 = "3499116c70027f24ac090fd426720835"

// Networks: a container is on its app's network (a stack member aliased by its name), an exported
// host also on the app's exports network, a dependent's container on the exports network of each
// dependency whose values it uses (env, command, a template that restarts it), and only then; with a
// default network, none of that.
func TestNetworks(t *testing.T) {
	btc := app("btc")
	btc.Exports = map[string]manifest.Export{"rpc_host": {Host: "btc"}}
	mp := app("mp", "btc")
	mp.Container = manifest.Container{}
	mp.Containers = []manifest.Container{{Name: "db", Image: "db:1"}, {Name: "api", Image: "api:1", Env: map[string]string{"H": "${btc.rpc_host}"}},
		{Name: "cfg", Image: "c:1"}, {Name: "web", Image: "w:1", Command: []string{"--own=${mp.api}"}}}
	mp.Hooks.PreStart = []manifest.TemplateHook{{Template: "a.tmpl", Path: "a", Containers: []string{"cfg"}}, {Template: "b.tmpl", Path: "b", Containers: []string{"web"}}}
	mp.HookDeps = [][]string{{"btc"}, nil}
	mp.Exports = map[string]manifest.Export{"api": {Host: "api"}}
	set := &manifest.Set{Apps: []*manifest.Loaded{btc, mp}, Providers: manifest.Providers([]*manifest.Loaded{btc, mp})}
	nets := func(w *Wiring) string {
		var out []string
		for _, a := range set.Apps {
			for _, d := range DesiredsFor(a, w) {
				out = append(out, fmt.Sprintf("%s:%s%v%v", d.Name(), d.Request.Network, d.Request.Aliases, d.Request.Networks))
			}
		}
		return strings.Join(out, " ")
	}
	want := "btc:lockstep-btc[][lockstep-btc_exports] mp-db:lockstep-mp[db][] mp-api:lockstep-mp[api][lockstep-mp_exports lockstep-btc_exports] " +
		"mp-cfg:lockstep-mp[cfg][lockstep-btc_exports] mp-web:lockstep-mp[web][]"
	if got := nets(&Wiring{Roots: testRoots, Set: set}); got != want {
		t.Fatalf("networks\n got %s\nwant %s", got, want)
	}
	if got := nets(&Wiring{Roots: testRoots, Set: set, DefaultNetwork: "bridge"}); got != "btc:bridge[][] mp-db:bridge[][] mp-api:bridge[][] mp-cfg:bridge[][] mp-web:bridge[][]" {
		t.Fatalf("with a default network: %s", got)
	}
}
