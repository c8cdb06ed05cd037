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
		case IsRestart(a.Kind) && now.Before(st.Next):
			a.Cause = fmt.Sprintf("%s; restart backoff after %d restarts: next attempt at %s", a.Cause, st.Attempts, st.Next.UTC().Format(time.RFC3339))
			a.Kind = KindWait
			a.WaitUntil = st.Next
		}
	}
	return forget
}

// RestartDependents restarts the running dependents of an app that this pass restarts after a
// failure (lnd after bitcoind came back: lnd may have stopped working, or exited 0, when its chain
// backend went away). Waves run dependencies first, so a dependent restarts after its dependency; if
// the dependency's repair fails, its dependents are left alone.
func RestartDependents(actions []Action) {
	for changed := true; changed; {
		changed = false
		restarted := map[string]bool{}
		for _, a := range actions {
			if IsRestart(a.Kind) {
				restarted[a.App] = true
			}
		}
		for i := range actions {
			a := &actions[i]
			if a.Kind != KindNone || a.Desired == nil {
				continue
			}
			for _, dep := range a.Desired.Deps {
				if restarted[dep] {
					a.Kind, a.Cause = KindRestart, fmt.Sprintf("dependency %s was restarted", dep)
					changed = true
					break
				}
			}
		}
	}
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
		if a.Desired == nil || (a.Kind != KindInstall && a.Kind != KindStart && a.Kind != KindForceRecreate && a.Kind != KindRecreate) {
			continue
		}
		if name, h := unhealthy(a.App, a.Desired.Index); name != "" {
			a.Kind, a.Cause, a.WaitDep = KindWait, fmt.Sprintf("%s; waiting for %s to be healthy (%s)", a.Cause, name, h), name
			continue
		}
		for _, dep := range a.Desired.Deps {
			if name, h := unhealthy(dep, -1); name != "" {
				what := "dependency " + dep
				if name != dep {
					what += " (" + name + ")"
				}
				a.Kind, a.Cause, a.WaitDep = KindWait, fmt.Sprintf("%s; waiting for %s to be healthy (%s)", a.Cause, what, h), dep
				break
			}
		}
	}
}
