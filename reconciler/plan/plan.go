package plan

import (
	"fmt"
	"sort"
	"time"

	"github.com/lockstep/lockstep/engine"
	"github.com/lockstep/lockstep/spec"
)

// Kind is what a pass does to one app.
type Kind string

// The kinds of action. KindNone is planned (and shown by a dry run) but never executed or reported.
const (
	KindNone          Kind = "none"
	KindStart         Kind = "start"
	KindInstall       Kind = "install"
	KindRecreate      Kind = "recreate"
	KindForceRecreate Kind = "force-recreate"
	KindAdopt         Kind = "adopt"
	KindRemove        Kind = "remove"
	KindHold          Kind = "hold"
	KindWait          Kind = "wait"
	KindRestart       Kind = "restart" // a running but unhealthy app
	// KindRollback recreates an app's container from its last known-good spec after an update failed.
	KindRollback Kind = "rollback"
)

// Action is one planned step for one app, with the reason for it.
type Action struct {
	App       string
	Kind      Kind
	Cause     string
	Container *engine.Container // the observed container, if any
	Desired   *spec.Desired     // nil for remove and hold
	WaitUntil time.Time         // for a restart held back by backoff
	WaitDep   string            // for an install or start held back until a dependency is healthy
	// ConfigChanged: a pre-start hook rewrote a file this container uses (a restart that is not a
	// repair: no backoff, and dependents are not restarted for it).
	ConfigChanged bool
	// AfterDependency: the restart a dependency's repair asked for, made once the dependency is
	// healthy again (or ready); it is not a repair of this app and does not count toward its backoff.
	AfterDependency bool
	// Blocked is why the action must not run (a hook failed, a value could not be had); it is reported.
	Blocked error
}

// Name is the podman name of the container the action is about.
func (a *Action) Name() string {
	if a.Desired != nil {
		return a.Desired.Name()
	}
	if a.Container != nil {
		return a.Container.Name
	}
	return a.App
}

// Adoption records a container that lockstep did not create but took over because it matched.
// They are keyed by container name.
type Adoption struct {
	App         string `json:"app,omitempty"`
	ContainerID string `json:"container_id"`
	Scheme      string `json:"hash_scheme"`
	Hash        string `json:"spec_hash"`
}

// Input is everything Match looks at.
type Input struct {
	Desired    []*spec.Desired     // the containers of the installed, valid apps, each app's in start order
	Invalid    map[string]bool     // installed apps whose manifest is invalid: their containers are held
	Containers []engine.Container  // every container podman listed
	Adopted    map[string]Adoption // container name -> adopted container
}

// Match decides, without any I/O, what a pass does for each container by comparing what is desired
// with what podman listed (Plan then folds the rest of the observation in). The result has one action per
// container of an installed app, one per invalid app and one per container lockstep owns that no
// installed app accounts for, sorted by app id (an app's containers in start order); Order gives the
// execution order.
func Match(in Input) []Action {
	byName := map[string]*engine.Container{}
	owned := map[string][]*engine.Container{} // app id -> containers labelled (or adopted) for it
	adoptedIDs := map[string]string{}
	for name, a := range in.Adopted {
		app := a.App
		if app == "" {
			app = name // recorded before stacks: a one-container app, named as its app
		}
		adoptedIDs[a.ContainerID] = app
	}
	for i := range in.Containers {
		c := &in.Containers[i]
		byName[c.Name] = c
		if app := c.Labels[spec.LabelApp]; app != "" {
			owned[app] = append(owned[app], c)
		} else if app, ok := adoptedIDs[c.ID]; ok {
			owned[app] = append(owned[app], c)
		}
	}
	var out []Action
	accounted := map[string]bool{}
	want := map[string]bool{}
	for _, d := range in.Desired {
		want[d.Name()] = true
	}
	for _, d := range in.Desired {
		id := d.App.ID
		if !accounted[id] {
			accounted[id] = true
			for _, c := range owned[id] {
				if !want[c.Name] {
					out = append(out, Action{App: id, Kind: KindRemove, Container: c,
						Cause: fmt.Sprintf("stray container %s labelled for this app", c.Name)})
				}
			}
		}
		var mine *engine.Container
		for _, c := range owned[id] {
			if c.Name == d.Name() {
				mine = c
			}
		}
		out = append(out, One(d, mine, byName[d.Name()], in.Adopted[d.Name()]))
	}
	for id := range in.Invalid {
		accounted[id] = true
		var c *engine.Container
		if cs := owned[id]; len(cs) > 0 {
			c = cs[0]
		}
		out = append(out, Action{App: id, Kind: KindHold, Container: c,
			Cause: "manifest is invalid; its container is left as it is"})
	}
	for id, cs := range owned {
		if accounted[id] {
			continue
		}
		for _, c := range cs {
			out = append(out, Action{App: id, Kind: KindRemove, Container: c,
				Cause: "app is no longer installed (its data is kept)"})
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].App < out[j].App })
	return out
}

// One plans desired container d: c is the container lockstep owns for it (labelled or adopted,
// nil for none), sameName a container that merely holds its name, ad its adoption record.
func One(d *spec.Desired, c, sameName *engine.Container, ad Adoption) Action {
	a := Action{App: d.App.ID, Desired: d, Container: c}
	if c == nil {
		if sameName != nil {
			a.Kind, a.Container = KindAdopt, sameName
			a.Cause = fmt.Sprintf("a container named %s exists that lockstep did not create", sameName.Name)
			return a
		}
		a.Kind, a.Cause = KindInstall, "no container"
		return a
	}
	scheme, hash := c.Labels[spec.LabelHashScheme], c.Labels[spec.LabelSpecHash]
	if c.Labels[spec.LabelApp] == "" && ad.ContainerID == c.ID {
		scheme, hash = ad.Scheme, ad.Hash
	}
	switch c.State {
	case "paused", "unknown", "dead":
		a.Kind, a.Cause = KindForceRecreate, fmt.Sprintf("container is %s", c.State)
		return a
	case "stopping", "removing":
		a.Kind, a.Cause = KindWait, fmt.Sprintf("container is %s", c.State)
		return a
	}
	want, known := d.Hashes[scheme]
	if known && want != hash {
		a.Kind, a.Cause = KindRecreate, fmt.Sprintf("spec changed (hash %s -> %s)", Short(hash), Short(want))
		return a
	}
	if c.State == "running" {
		a.Kind, a.Cause = KindNone, "running, spec unchanged"
		if !known {
			a.Cause = fmt.Sprintf("running; hash scheme %q is unknown to this lockstep, so drift is not checked", scheme)
		}
		return a
	}
	a.Kind, a.Cause = KindStart, fmt.Sprintf("container is %s", c.State)
	if c.State == "created" {
		// Podman resets every container to created when it refreshes after a reboot; starting keeps the
		// container (and its id). If the start fails, the executor force-recreates it in the same action.
		a.Cause = CauseCreated
	}
	return a
}

// CauseCreated is the cause of starting a created container whose spec is unchanged.
const CauseCreated = "container is created (not started since it was made, or since a reboot)"

// Short is a spec hash as causes and logs show it: its first 12 characters, "none" for no hash.
func Short(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	if h == "" {
		return "none"
	}
	return h
}

// Order returns the actions in waves: every action of a wave depends only on containers of earlier
// waves, so the actions of one wave can run in parallel. An app's containers follow each other in
// start order, and an app starts after the last container of each dependency. Removals come first.
func Order(actions []Action) [][]Action {
	deps := map[string][]string{}
	size := map[string]int{}
	for _, a := range actions {
		if a.Desired != nil {
			deps[a.App] = a.Desired.Deps
			size[a.App] = max(size[a.App], a.Desired.Index+1)
		}
	}
	start := map[string]int{} // the wave of an app's first container
	var depth func(id string, seen map[string]bool) int
	depth = func(id string, seen map[string]bool) int {
		if l, ok := start[id]; ok {
			return l
		}
		if seen[id] {
			return 0 // a cycle; validation rejects these, so this is only a guard
		}
		seen[id] = true
		l := 0
		for _, dep := range deps[id] {
			if _, ok := deps[dep]; ok {
				l = max(l, depth(dep, seen)+size[dep])
			}
		}
		start[id] = l
		return l
	}
	var removes []Action
	var waves [][]Action
	for _, a := range actions {
		if a.Kind == KindRemove {
			removes = append(removes, a)
			continue
		}
		l := depth(a.App, map[string]bool{})
		if a.Desired != nil {
			l += a.Desired.Index
		}
		for len(waves) <= l {
			waves = append(waves, nil)
		}
		waves[l] = append(waves[l], a)
	}
	if len(removes) > 0 {
		waves = append([][]Action{removes}, waves...)
	}
	return waves
}
