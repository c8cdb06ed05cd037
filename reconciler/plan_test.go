package reconciler

import (
	"github.com/lockstep/lockstep/engine"
	"github.com/lockstep/lockstep/manifest"
	"github.com/lockstep/lockstep/spec"
)

var testRoots = manifest.Roots{DataRoot: "/var/lib/lockstep/apps"}

func app(id string, deps ...string) *manifest.Loaded {
	return &manifest.Loaded{App: manifest.App{ID: id, Name: id, Version: "1",
		Container: manifest.Container{Image: "localhost/" + id + ":1"},
		Requires:  manifest.Requires{Apps: deps}}}
}

func desired(apps ...*manifest.Loaded) []*spec.Desired {
	set := &manifest.Set{Apps: apps, Providers: manifest.Providers(apps)}
	var out []*spec.Desired
	for _, a := range apps {
		out = append(out, spec.DesiredsFor(a, &spec.Wiring{Roots: testRoots, Set: set})...)
	}
	return out
}

// owned is a container lockstep created for a, with the hash a has now.
func owned(a *manifest.Loaded, state string) engine.Container {
	d := spec.DesiredFor(a, testRoots)
	return engine.Container{ID: "id-" + a.ID, Name: a.ID, State: state, Labels: d.Request.Labels}
}

func withLabel(c engine.Container, k, v string) engine.Container {
	l := map[string]string{}
	for a, b := range c.Labels {
		l[a] = b
	}
	l[k] = v
	c.Labels = l
	return c
}

func testRootsIn(dir string) manifest.Roots {
	return manifest.Roots{DataRoot: dir + "/data"}
}
