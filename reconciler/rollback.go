package reconciler

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/lockstep/lockstep/outcome"
	"github.com/lockstep/lockstep/reconciler/plan"
	"github.com/lockstep/lockstep/reconciler/probe"
	"github.com/lockstep/lockstep/reconciler/rollback"
	"github.com/lockstep/lockstep/spec"
)

// This file judges containers on trial and holds rolled-back apps; package rollback's doc gives the
// rules, and its Book keeps the records.

// RollbackSettle is how long a new container of an app without a health check must keep running
// (and answering on its published ports) before its spec counts as good; Config.RollbackSettle
// overrides it.
const RollbackSettle = 30 * time.Second

// The rollback book (package rollback), under the names the pass uses.
type (
	rollbacks      = rollback.Book
	rollbackRecord = rollback.Record
	goodSpec       = rollback.Good
	trialSpec      = rollback.Trial
)

func loadRollbacks(dir string, log interface{ Warnf(string, ...any) }) (*rollbacks, error) {
	return rollback.Load(dir, log)
}

func (r *Reconciler) rollbackSettle() time.Duration {
	switch {
	case r.cfg.RollbackSettle < 0:
		return 0
	case r.cfg.RollbackSettle == 0:
		return RollbackSettle
	}
	return r.cfg.RollbackSettle
}

func specHashOf(c *Container) string {
	if c == nil {
		return ""
	}
	return c.Labels[LabelSpecHash]
}

// goodDesired is d with its container replaced by the saved good one: same app, member, place and
// dependencies, the good request and its hash, the good request's health check, and no build (the
// manifest's build makes the new spec's image, not the good one's).
func goodDesired(d *Desired, g *goodSpec) *Desired {
	gd := *d
	scheme := g.Scheme
	if scheme == "" {
		scheme = HashScheme
	}
	gd.Request, gd.Health, gd.Build, gd.Err = g.Request, g.Request.Health, nil, nil
	gd.Hashes = map[string]string{scheme: g.Hash}
	return &gd
}

// holdLocked re-plans an app whose manifest asks for a spec that was rolled back: against its good
// spec, so a dead container is started, a missing one installed, a running one left alone.
func (r *Reconciler) holdLocked(a *Action, rec *rollbackRecord) {
	gd := goodDesired(a.Desired, rec.Good)
	if a.Kind == KindAdopt {
		return // a container lockstep did not create holds the name: adoption decides
	}
	r.mu.Lock()
	ad := r.adopted[a.Name()]
	r.mu.Unlock()
	na := plan.One(gd, a.Container, nil, ad)
	if na.Kind == KindNone {
		na.Cause = fmt.Sprintf("rolled back: the manifest's spec %s failed (%s); running %s until the manifest changes",
			plan.Short(rec.Failed.Hash), rec.Failed.Reason, plan.Short(rec.Good.Hash))
	}
	*a = na
}

// holdRolledBack applies holds to a dry run's plan (no trial is judged and nothing is changed).
func (r *Reconciler) holdRolledBack(actions []Action) {
	rb := r.rb
	rb.Lock()
	defer rb.Unlock()
	for i := range actions {
		a := &actions[i]
		if a.Desired == nil || a.Kind == KindRemove {
			continue
		}
		if rec := rb.Apps[a.Name()]; rec != nil && rec.Good != nil && rec.Failed != nil && rec.Failed.Hash == a.Desired.Hash() {
			r.holdLocked(a, rec)
		}
	}
}

// planRollback runs right after Plan in a pass: it judges the containers on trial (turning a failed
// one's action into KindRollback), holds apps whose manifest asks for a rolled-back spec, forgets a
// failed spec once the manifest asks for another, and records good specs.
func (r *Reconciler) planRollback(ctx context.Context, actions []Action, now time.Time) {
	rb := r.rb
	rb.Lock()
	defer rb.Unlock()
	rb.Held = map[string]bool{}
	for i := range actions {
		a := &actions[i]
		if a.Desired == nil || a.Kind == KindRemove {
			continue
		}
		rec := rb.Apps[a.Name()]
		want := a.Desired.Hash()
		if rec != nil && rec.Trial != nil {
			if r.judgeTrialLocked(ctx, a, rec, now) {
				continue
			}
		}
		if rec != nil && rec.Failed != nil {
			if rec.Failed.Hash == want && rec.Good != nil {
				r.holdLocked(a, rec)
				rb.Held[a.Name()] = true
				continue
			}
			// The manifest changed: a new attempt (or back to the good spec).
			rec.Failed = nil
			rb.Dirty = true
		}
		r.noteGoodLocked(a, rec, now)
	}
}

// noteGoodLocked records the running container of an unchanged app as good once it is healthy, or,
// without a health check, once lockstep has seen it running for the settle window.
func (r *Reconciler) noteGoodLocked(a *Action, rec *rollbackRecord, now time.Time) {
	rb := r.rb
	c, want := a.Container, a.Desired.Hash()
	if a.Kind != KindNone || c == nil || c.State != "running" || specHashOf(c) != want {
		delete(rb.Running, a.Name())
		return
	}
	if rec != nil && rec.Good != nil && rec.Good.Hash == want {
		return
	}
	if a.Desired.Health != nil {
		if h, _ := r.healthOf(a.Name()); h != HealthHealthy {
			return
		}
	} else {
		rs, ok := rb.Running[a.Name()]
		if !ok || rs.ID != c.ID {
			rb.Running[a.Name()] = rollback.Running{ID: c.ID, Since: now}
			return
		}
		if now.Sub(rs.Since) < r.rollbackSettle() {
			return
		}
	}
	r.setGoodLocked(a)
}

func (r *Reconciler) setGoodLocked(a *Action) {
	rb := r.rb
	rec := rb.Record(a.Name(), a.App)
	rec.Good = &rollback.Good{Hash: a.Desired.Hash(), Scheme: HashScheme, Request: a.Desired.Request}
	rec.Trial = nil
	rb.Dirty = true
	delete(rb.Running, a.Name())
	r.cfg.Log.WithField("app", a.App).WithField("container", a.Name()).WithField("spec", plan.Short(rec.Good.Hash)).Debug("spec recorded as good")
}

// trialDeadline is when a container on trial must have been judged good. With a health check it
// counts from when this process began checking the container (after a restart of lockstepd, health
// is judged afresh; with no check target yet, this pass makes one starting now), never before the
// trial started.
func (r *Reconciler) trialDeadline(d *Desired, t *trialSpec, now time.Time) time.Time {
	if h := d.Health; h != nil {
		base := t.Started
		r.mu.Lock()
		ht, ok := r.healthTargets[d.Name()]
		r.mu.Unlock()
		if !ok {
			ht.started = now
		}
		if ht.started.After(base) {
			base = ht.started
		}
		e := spec.Effective(h)
		return base.Add(e.StartPeriod + time.Duration(e.Retries+1)*(e.Interval+e.Timeout))
	}
	grace := r.rollbackSettle()
	if len(d.Request.Ports) > 0 {
		grace = max(grace, r.cfg.ReachGrace)
	}
	return t.Started.Add(grace)
}

// judgeTrialLocked judges the container on trial of a's app. It returns true when a's action is
// settled (a rollback, or a trial still pending on a running container), false to plan on.
func (r *Reconciler) judgeTrialLocked(ctx context.Context, a *Action, rec *rollbackRecord, now time.Time) bool {
	rb := r.rb
	t := rec.Trial
	c := a.Container
	drop := func() bool {
		rec.Trial = nil
		rb.Dirty = true
		return false
	}
	switch {
	case a.Desired.Hash() != t.Hash:
		return drop() // the manifest changed again: a recreate follows, maybe with a trial of its own
	case rec.Good == nil || rec.Good.Hash != t.From:
		return drop()
	case a.Kind == KindAdopt:
		return drop()
	case c != nil && specHashOf(c) == t.From:
		return drop() // the recreate failed before replacing the good container (image, dependency)
	case a.Kind == KindWait:
		return true // stopping or removing: judged later
	}
	reason := ""
	switch {
	case c == nil:
		reason = "no container"
	case c.State != "running":
		reason = "container is " + c.State
	}
	if reason != "" && t.Error != "" {
		reason += " (" + t.Error + ")"
	}
	if reason == "" {
		if a.Desired.Health != nil {
			h, streak := r.healthOf(a.Name())
			switch {
			case h == HealthHealthy:
				r.setGoodLocked(a)
				r.cfg.Log.WithField("app", a.App).Info("updated spec is healthy: kept")
				return false
			case h == HealthUnhealthy:
				reason = fmt.Sprintf("health check failing (%d in a row)", streak)
			case h == "":
				return true // not checked by this process yet (lockstepd restarted): the monitor's pass judges
			case !now.Before(r.trialDeadline(a.Desired, t, now)):
				reason = fmt.Sprintf("health still %s after the start period and retries", h)
			default:
				return true
			}
		} else {
			if now.Sub(t.Started) < r.rollbackSettle() {
				return true
			}
			addr := probe.Container(ctx, a.Desired)
			switch {
			case addr == "":
				r.setGoodLocked(a)
				r.cfg.Log.WithField("app", a.App).Info("updated spec kept running: kept")
				return false
			case !now.Before(r.trialDeadline(a.Desired, t, now)):
				reason = addr
			default:
				return true
			}
		}
	}
	cause := fmt.Sprintf("new spec %s not healthy after %s: %s; back to %s", plan.Short(t.Hash),
		now.Sub(t.Started).Round(time.Second), reason, plan.Short(rec.Good.Hash))
	failedHash := t.Hash
	rec.Failed = &rollback.Failed{Hash: failedHash, Reason: cause, At: now.UTC()}
	rec.Trial = nil
	rb.Dirty = true
	rb.Held[a.Name()] = true
	delete(r.reach, a.Name()) // the good container gets its own reachability grace
	a.Desired = goodDesired(a.Desired, rec.Good)
	a.Kind, a.Cause = KindRollback, cause
	r.cfg.Log.WithField("app", a.App).Warn(cause)
	return true
}

// finishRollback runs after a pass's report rows are made: it puts the recreated containers that have
// a good spec to fall back to on trial, marks held ones rolled-back in the report (the app's row and
// its stack container's; with a failure saying the manifest's spec is not applied), forgets
// uninstalled apps, saves the book if it changed and makes sure lockstepd wakes for the next trial
// deadline.
func (r *Reconciler) finishRollback(actions []Action, results map[string]result, now time.Time, rep *Report) {
	rb := r.rb
	rb.Lock()
	defer rb.Unlock()
	// Containers of installed apps; an app whose manifest is invalid keeps its records.
	byName := map[string]*Action{}
	keepApp := map[string]bool{}
	for i := range actions {
		a := &actions[i]
		switch {
		case a.Kind == KindHold:
			keepApp[a.App] = true
		case a.Desired != nil && a.Kind != KindRemove:
			byName[a.Name()] = a
		}
	}
	for name, rec := range rb.Apps {
		if byName[name] == nil && !keepApp[rec.App] {
			delete(rb.Apps, name)
			rb.Dirty = true
		}
	}
	for name := range rb.Running {
		if byName[name] == nil {
			delete(rb.Running, name)
		}
	}
	var wake time.Time
	soon := func(t time.Time) {
		if wake.IsZero() || t.Before(wake) {
			wake = t
		}
	}
	unconfirmed := map[string]bool{}
	for _, a := range actions {
		if a.Kind != KindRecreate || a.Desired == nil {
			continue
		}
		res, done := results[actionKey(a)]
		rec := rb.Apps[a.Name()]
		want := a.Desired.Hash()
		if !done || rec == nil || rec.Good == nil || rec.Good.Hash == want {
			continue
		}
		t := &rollback.Trial{Hash: want, From: rec.Good.Hash, Started: now.UTC()}
		if res.err != nil {
			t.Error = res.err.Error()
			if res.containerID != "" {
				soon(now) // created but not started: judge at once
			} else {
				// The recreate failed before creating anything: the good container may be untouched
				// (image, data dir) or gone (create failed). The next pass tells: it drops the trial
				// or rolls back. No wake of its own: podman's events and the timer bring that pass.
				unconfirmed[a.Name()] = true
			}
		}
		rec.Trial = t
		rb.Dirty = true
	}
	for name, rec := range rb.Apps {
		a := byName[name]
		if rec.Trial == nil || a == nil || unconfirmed[name] {
			continue
		}
		if a.Desired.Health == nil {
			if s := rec.Trial.Started.Add(r.rollbackSettle()); s.After(now) {
				soon(s)
			}
		}
		if d := r.trialDeadline(a.Desired, rec.Trial, now); d.After(now) {
			soon(d)
		}
	}
	rows := map[string]*AppStatus{}
	for i := range rep.Apps {
		rows[rep.Apps[i].ID] = &rep.Apps[i]
	}
	for name, a := range byName {
		rec, row := rb.Apps[name], rows[a.App]
		if !rb.Held[name] || rec == nil || rec.Failed == nil || row == nil {
			continue
		}
		if member := a.Desired.Member; member != "" {
			for k := range row.Containers {
				if c := &row.Containers[k]; c.Name == member && c.State == StateRunning {
					c.State = StateRolledBack
				}
			}
		}
		if row.State == StateRunning {
			row.State = StateRolledBack
		}
		rep.Failures = append(rep.Failures, actionFailure(*a, fmt.Sprintf("the manifest's spec %s is not applied until the manifest changes: %s",
			plan.Short(rec.Failed.Hash), rec.Failed.Reason), outcome.ClassRolledBack))
	}
	sort.SliceStable(rep.Failures, func(i, j int) bool { return rep.Failures[i].App < rep.Failures[j].App })
	if err := rb.SaveLocked(); err != nil {
		r.cfg.Log.WithError(err).Error("saving rollback records")
	}
	if !wake.IsZero() {
		r.wakeBy(wake)
	}
}
