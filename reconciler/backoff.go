package reconciler

import (
	"time"

	"github.com/lockstep/lockstep/reconciler/plan"
)

// Restart backoff (package plan decides; the book is the reconciler's).
const (
	BackoffMin   = plan.BackoffMin
	BackoffMax   = plan.BackoffMax
	BackoffReset = plan.BackoffReset
)

type backoffState = plan.Backoff

func backoffDelay(attempts int) time.Duration { return plan.BackoffDelay(attempts) }

func isRestart(k plan.Kind) bool { return plan.IsRestart(k) }

// recordRestart notes a restart lockstep made and when the next may come.
func (r *Reconciler) recordRestart(app string, now time.Time) {
	st := r.backoff[app]
	if st == nil {
		st = &backoffState{}
		r.backoff[app] = st
	}
	st.Attempts++
	st.LastStart = now
	st.Next = now.Add(backoffDelay(st.Attempts))
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
