package reconciler

import (
	"fmt"
	"time"
)

// Restart backoff: the first restart of a dead or wedged app is immediate; each further one waits
// twice as long as the last, from BackoffMin up to BackoffMax, until the app has stayed up for
// BackoffReset. A crash-looping app therefore never makes a restart storm, even with events.
const (
	BackoffMin   = 10 * time.Second
	BackoffMax   = 5 * time.Minute
	BackoffReset = 10 * time.Minute
)

type backoffState struct {
	attempts  int
	lastStart time.Time
	next      time.Time // no restart before this
}

func backoffDelay(attempts int) time.Duration {
	d := BackoffMin
	for i := 1; i < attempts && d < BackoffMax; i++ {
		d *= 2
	}
	return min(d, BackoffMax)
}

// isRestart tells whether an action restarts an app that was found dead or wedged (an operator's
// change, install or recreate, is never held back).
func isRestart(k Kind) bool { return k == KindStart || k == KindForceRecreate || k == KindRestart }

// applyBackoff turns restarts that come too soon into waits, and forgets the history of apps that
// have run for BackoffReset. Called with r.mu not held, from the pass goroutine only.
func (r *Reconciler) applyBackoff(actions []Action, now time.Time) {
	for i := range actions {
		a := &actions[i]
		st := r.backoff[a.App]
		if st == nil {
			continue
		}
		switch {
		case a.Kind == KindNone && now.Sub(st.lastStart) >= BackoffReset:
			delete(r.backoff, a.App)
		case a.Kind == KindInstall || a.Kind == KindRecreate || a.Kind == KindRemove:
			delete(r.backoff, a.App)
		case isRestart(a.Kind) && now.Before(st.next):
			a.Cause = fmt.Sprintf("%s; restart backoff after %d restarts: next attempt at %s", a.Cause, st.attempts, st.next.UTC().Format(time.RFC3339))
			a.Kind = KindWait
			a.WaitUntil = st.next
		}
	}
}

// recordRestart notes a restart lockstep made and when the next may come.
func (r *Reconciler) recordRestart(app string, now time.Time) {
	st := r.backoff[app]
	if st == nil {
		st = &backoffState{}
		r.backoff[app] = st
	}
	st.attempts++
	st.lastStart = now
	st.next = now.Add(backoffDelay(st.attempts))
}

// NextWake is the earliest time a held-back restart becomes due (zero when none): lockstepd runs a
// pass then, since nothing else may trigger one.
func (r *Reconciler) NextWake() time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.nextWake
}

// wakeBy asks lockstepd for a pass at t at the latest (see NextWake); the stages of a pass that
// need to look again later (held-back restarts, rollback trials, companions waiting) each call it.
func (r *Reconciler) wakeBy(t time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.nextWake.IsZero() || t.Before(r.nextWake) {
		r.nextWake = t
	}
}

// restartDependents restarts the running dependents of an app that this pass restarts after a
// failure (lnd after bitcoind came back: lnd may have stopped working, or exited 0, when its chain
// backend went away). Waves run dependencies first, so a dependent restarts after its dependency; if
// the dependency's repair fails, its dependents are left alone.
func restartDependents(actions []Action) {
	for changed := true; changed; {
		changed = false
		restarted := map[string]bool{}
		for _, a := range actions {
			if isRestart(a.Kind) {
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
