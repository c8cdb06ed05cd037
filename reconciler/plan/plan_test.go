package plan

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

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

type step struct {
	App, Kind, Cause string
}

func TestPlan(t *testing.T) {
	web, worker := app("web"), app("worker", "web")
	changed := app("web")
	changed.Container.Image = "localhost/web:2"
	tests := []struct {
		name string
		in   Input
		want []step
	}{
		{"nothing installed, nothing running", Input{}, nil},
		{"missing apps are installed", Input{Desired: desired(web, worker)},
			[]step{{"web", "install", "no container"}, {"worker", "install", "no container"}}},
		{"running and unchanged is a no-op", Input{Desired: desired(web), Containers: []engine.Container{owned(web, "running")}},
			[]step{{"web", "none", "running, spec unchanged"}}},
		{"exited is started", Input{Desired: desired(web), Containers: []engine.Container{owned(web, "exited")}},
			[]step{{"web", "start", "container is exited"}}},
		{"stopped is started", Input{Desired: desired(web), Containers: []engine.Container{owned(web, "stopped")}},
			[]step{{"web", "start", "container is stopped"}}},
		{"created and unchanged is started", Input{Desired: desired(web), Containers: []engine.Container{owned(web, "created")}},
			[]step{{"web", "start", "container is created (not started since it was made, or since a reboot)"}}},
		{"drift of a created container is recreated", Input{Desired: desired(changed), Containers: []engine.Container{owned(web, "created")}},
			[]step{{"web", "recreate", "spec changed (hash " + spec.DesiredFor(web, testRoots).Hash()[:12] + " -> " + spec.DesiredFor(changed, testRoots).Hash()[:12] + ")"}}},
		{"dead is force-recreated", Input{Desired: desired(web), Containers: []engine.Container{owned(web, "dead")}},
			[]step{{"web", "force-recreate", "container is dead"}}},
		{"paused is force-recreated", Input{Desired: desired(web), Containers: []engine.Container{owned(web, "paused")}},
			[]step{{"web", "force-recreate", "container is paused"}}},
		{"unknown is force-recreated", Input{Desired: desired(web), Containers: []engine.Container{owned(web, "unknown")}},
			[]step{{"web", "force-recreate", "container is unknown"}}},
		{"stopping is waited for", Input{Desired: desired(web), Containers: []engine.Container{owned(web, "stopping")}},
			[]step{{"web", "wait", "container is stopping"}}},
		{"drift is recreated", Input{Desired: desired(changed), Containers: []engine.Container{owned(web, "running")}},
			[]step{{"web", "recreate", "spec changed (hash " + spec.DesiredFor(web, testRoots).Hash()[:12] + " -> " + spec.DesiredFor(changed, testRoots).Hash()[:12] + ")"}}},
		{"drift of an exited container is recreated", Input{Desired: desired(changed), Containers: []engine.Container{owned(web, "exited")}},
			[]step{{"web", "recreate", "spec changed (hash " + spec.DesiredFor(web, testRoots).Hash()[:12] + " -> " + spec.DesiredFor(changed, testRoots).Hash()[:12] + ")"}}},
		{"unknown hash scheme is not drift", Input{Desired: desired(changed), Containers: []engine.Container{withLabel(owned(web, "running"), spec.LabelHashScheme, "v9")}},
			[]step{{"web", "none", `running; hash scheme "v9" is unknown to this lockstep, so drift is not checked`}}},
		{"foreign container with the app's name", Input{Desired: desired(web), Containers: []engine.Container{{ID: "x", Name: "web", State: "running"}}},
			[]step{{"web", "adopt", "a container named web exists that lockstep did not create"}}},
		{"adopted container is owned", Input{Desired: desired(web), Containers: []engine.Container{{ID: "x", Name: "web", State: "running"}},
			Adopted: map[string]Adoption{"web": {ContainerID: "x", Scheme: "v1", Hash: spec.DesiredFor(web, testRoots).Hash()}}},
			[]step{{"web", "none", "running, spec unchanged"}}},
		{"adopted container drifts", Input{Desired: desired(web), Containers: []engine.Container{{ID: "x", Name: "web", State: "running"}},
			Adopted: map[string]Adoption{"web": {ContainerID: "x", Scheme: "v1", Hash: "old"}}},
			[]step{{"web", "recreate", "spec changed (hash old -> " + spec.DesiredFor(web, testRoots).Hash()[:12] + ")"}}},
		{"uninstalled app is removed", Input{Containers: []engine.Container{owned(web, "running")}},
			[]step{{"web", "remove", "app is no longer installed (its data is kept)"}}},
		{"invalid manifest holds the container", Input{Invalid: map[string]bool{"web": true}, Containers: []engine.Container{owned(web, "exited")}},
			[]step{{"web", "hold", "manifest is invalid; its container is left as it is"}}},
		{"stray labelled container is removed", Input{Desired: desired(web), Containers: []engine.Container{owned(web, "running"), withLabel(engine.Container{ID: "s", Name: "web-old", State: "exited"}, spec.LabelApp, "web")}},
			[]step{{"web", "remove", "stray container web-old labelled for this app"}, {"web", "none", "running, spec unchanged"}}},
		{"unlabelled unrelated containers are ignored", Input{Containers: []engine.Container{{ID: "z", Name: "postgres", State: "running"}}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []step
			for _, a := range Match(tt.in) {
				got = append(got, step{a.App, string(a.Kind), a.Cause})
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Fatalf("plan (-want +got):\n%s", diff)
			}
		})
	}
}

func TestOrderPutsDependenciesFirst(t *testing.T) {
	a, b, c, d := app("a"), app("b", "a"), app("c", "b", "a"), app("d")
	actions := Match(Input{Desired: desired(c, b, a, d), Containers: []engine.Container{owned(app("gone"), "running")}})
	var got [][]string
	for _, w := range Order(actions) {
		var ids []string
		for _, x := range w {
			ids = append(ids, x.App+":"+string(x.Kind))
		}
		got = append(got, ids)
	}
	want := [][]string{{"gone:remove"}, {"a:install", "d:install"}, {"b:install"}, {"c:install"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("waves (-want +got):\n%s", diff)
	}
}

// Backoff folds without touching its book: a restart too soon becomes a wait with its due time; an
// app forgotten by one of its actions (an operator's recreate) is not held back by its others.
func TestApplyBackoff(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	web, db := app("web"), app("db")
	book := map[string]*Backoff{"web": {Attempts: 2, LastStart: now.Add(-time.Second), Next: now.Add(19 * time.Second)},
		"db": {Attempts: 1, LastStart: now.Add(-time.Minute), Next: now.Add(time.Minute)}}
	ds := desired(web, db)
	actions := []Action{{App: "db", Kind: KindRecreate, Desired: ds[1]}, {App: "db", Kind: KindStart, Desired: ds[1]},
		{App: "web", Kind: KindStart, Cause: "container is exited", Desired: ds[0]}}
	forget := ApplyBackoff(actions, book, now)
	if len(forget) != 1 || forget[0] != "db" || len(book) != 2 {
		t.Fatalf("forget %v, book %v", forget, book)
	}
	if actions[1].Kind != KindStart || actions[2].Kind != KindWait || !actions[2].WaitUntil.Equal(now.Add(19*time.Second)) ||
		actions[2].Cause != "container is exited; restart backoff after 2 restarts: next attempt at 2026-01-01T00:00:19Z" {
		t.Fatalf("actions %+v", actions)
	}
	if BackoffDelay(1) != BackoffMin || BackoffDelay(2) != 2*BackoffMin || BackoffDelay(30) != BackoffMax {
		t.Fatal("delays")
	}
}
