package plan

import (
	"fmt"
	"time"
)

// The stages of a pass that fold what the pass knows into the planned actions without I/O (the
// order they run in, and why: docs/architecture.md, "A pass").

// Restart backoff: the first restart of a dead or wedged app is immediate; each further one waits
// twice as long as the last, from BackoffMin up to BackoffMax, until the app has stayed up for
// BackoffReset. A crash-looping app therefore never makes a restart storm, even with events.
const (
	BackoffMin   = 10 * time.Second
	BackoffMax   = 5 * time.Minute
	BackoffReset = 10 * time.Minute
)

// Backoff is an app's restart history, as the reconciler books it.
type Backoff struct {
	Attempts  int
	LastStart time.Time
	Next      time.Time // no restart before this
}

// BackoffDelay is the wait after the attempts-th restart.
func BackoffDelay(attempts int) time.Duration {
	d := BackoffMin
	for i := 1; i < attempts && d < BackoffMax; i++ {
		d *= 2
	}
	return min(d, BackoffMax)
}

// IsRestart tells whether an action restarts an app that was found dead or wedged (an operator's
// change, install or recreate, is never held back).
func IsRestart(k Kind) bool { return k == KindStart || k == KindForceRecreate || k == KindRestart }

// ApplyBackoff turns restarts that come too soon into waits, and returns the apps whose history is
// to be forgotten: those that have run for BackoffReset, and those an install, recreate or removal
// changes (the operator's doing). An app forgotten by one of its actions is not held back by the
// others. book is only read.
func ApplyBackoff(actions []Action, book map[string]*Backoff, now time.Time) (forget []string) {
	gone := map[string]bool{}
	for i := range actions {
		a := &actions[i]
		st := book[a.App]
		if st == nil || gone[a.App] {
			continue
		}
		switch {
		case a.Kind == KindNone && now.Sub(st.LastStart) >= BackoffReset,
			a.Kind == KindInstall || a.Kind == KindRecreate || a.Kind == KindRemove:
			gone[a.App] = true
			forget = append(forget, a.App)
		case IsRestart(a.Kind) && !a.AfterDependency && now.Before(st.Next):
			a.Cause = fmt.Sprintf("%s; restart backoff after %d restarts: next attempt at %s", a.Cause, st.Attempts, st.Next.UTC().Format(time.RFC3339))
			a.Kind = KindWait
			a.WaitUntil = st.Next
		}
	}
	return forget
}

// WaitForHealthyDependencies holds back installing or starting a container until each dependency
// that declares a health check is healthy (bitcoind before lnd), and until the containers before it
// in its stack that declare one are. health gives a container's health by podman name ("" when it is
// not checked). The health monitor asks for a pass when a dependency's health changes, so the
// dependent follows without waiting for the timer.
func WaitForHealthyDependencies(actions []Action, health func(container string) string) {
	byApp := map[string][]*Action{}
	for i := range actions {
		if actions[i].Desired != nil {
			byApp[actions[i].App] = append(byApp[actions[i].App], &actions[i])
		}
	}
	// unhealthy returns the first container of app (before index before, when >= 0) with a health
	// check that is not healthy, and its health.
	unhealthy := func(app string, before int) (string, string) {
		for _, d := range byApp[app] {
			if d.Desired.Health == nil || (before >= 0 && d.Desired.Index >= before) {
				continue
			}
			if h := health(d.Name()); h != "healthy" { // report.HealthHealthy
				if h == "" {
					h = "not checked yet"
				}
				return d.Name(), h
			}
		}
		return "", ""
	}
	for i := range actions {
		a := &actions[i]
		if a.Desired == nil {
			continue
		}
		// A repair of a running container (unhealthy, unreachable) waits too, and keeps it running:
		// its fault is likely its dependency's, and restarting it would only use up its backoff.
		repair := a.Kind == KindRestart && !a.ConfigChanged && a.Container != nil && a.Container.State == "running"
		if !repair && a.Kind != KindInstall && a.Kind != KindStart && a.Kind != KindForceRecreate && a.Kind != KindRecreate {
			continue
		}
		wait := func(what, h, dep string) {
			a.Cause, a.WaitDep = fmt.Sprintf("%s; waiting for %s to be healthy (%s)", a.Cause, what, h), dep
			if a.Kind = KindWait; repair {
				a.Kind = KindNone
			}
		}
		if name, h := unhealthy(a.App, a.Desired.Index); name != "" {
			wait(name, h, name)
			continue
		}
		for _, dep := range a.Desired.Deps {
			if name, h := unhealthy(dep, -1); name != "" {
				what := "dependency " + dep
				if name != dep {
					what += " (" + name + ")"
				}
				wait(what, h, dep)
				break
			}
		}
	}
}

// AfterRepair is the rule for dependents after a dependency's repair (docs/manifest.md, "Dependents
// after a dependency's repair"): the running dependents of an app this pass repairs (restarted,
// started, recreated after a failure) are not restarted with it; they are booked in waits
// (dependent app -> dependency), keep running, and the report says "waiting for DEP to be healthy".
// In the first pass that finds the dependency ready again (ready: each of its containers with a
// health check healthy, the others running with their published ports answering) and not waiting
// itself, each is restarted once (AfterDependency: not held back by backoff, not counted toward
// it), and its own running dependents are booked in turn. A dependency whose repair is held back or
// fails repairs nothing, so its dependents are left alone. waits is changed in place.
func AfterRepair(actions []Action, waits map[string]string, ready func(app string) (bool, string)) {
	repaired := map[string]bool{}
	byApp := map[string][]*Action{}
	for i := range actions {
		a := &actions[i]
		if a.Desired != nil && a.Kind != KindRemove {
			byApp[a.App] = append(byApp[a.App], a)
		}
		if IsRestart(a.Kind) && a.Blocked == nil {
			repaired[a.App] = true
		}
	}
	waiting := map[string]bool{}
	for app := range waits {
		if byApp[app] == nil {
			delete(waits, app) // uninstalled, or its manifest is invalid
		} else {
			waiting[app] = true
		}
	}
	cause := func(app, dep, why string) {
		for _, a := range byApp[app] {
			if a.Kind == KindNone {
				a.Cause, a.WaitDep = fmt.Sprintf("dependency %s was restarted; waiting for %s to be healthy%s before restarting this app", dep, dep, why), dep
			}
		}
	}
	restarted := map[string]bool{}
	for app, dep := range waits {
		if repaired[dep] || waiting[dep] {
			continue // repaired again in this pass, or waiting for its own dependency: not ready
		}
		if ok, why := ready(dep); !ok {
			cause(app, dep, " ("+why+")")
			continue
		}
		delete(waits, app)
		for _, a := range byApp[app] {
			switch {
			case a.Kind == KindNone && a.Container != nil && a.Container.State == "running":
				a.Kind, a.Cause, a.AfterDependency = KindRestart, fmt.Sprintf("dependency %s was restarted and is healthy again", dep), true
				restarted[app] = true
			case IsRestart(a.Kind):
				a.AfterDependency = true // restarted anyway: that is its restart after the dependency
				restarted[app] = true
			}
		}
	}
	for app := range restarted {
		repaired[app] = true
	}
	for app, acts := range byApp {
		for _, a := range acts {
			if _, booked := waits[app]; booked || a.Kind != KindNone || a.Container == nil || a.Container.State != "running" {
				continue
			}
			for _, dep := range a.Desired.Deps {
				if repaired[dep] {
					waits[app] = dep
					break
				}
			}
		}
	}
	for app, dep := range waits {
		if repaired[dep] || waiting[dep] {
			cause(app, dep, "")
		}
	}
}
