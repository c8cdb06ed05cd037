package reconciler

import (
	"fmt"
	"sort"
	"time"

	"github.com/lockstep/lockstep/outcome"
	"github.com/lockstep/lockstep/reconciler/failure"
	"github.com/lockstep/lockstep/reconciler/plan"
	"github.com/lockstep/lockstep/report"
)

// Package plan judges containers on trial and holds rolled-back apps; package rollback's doc gives
// the rules, and its Book keeps the records. This file books what a pass did: the trials it started.

// RollbackSettle is how long a new container of an app without a health check must keep running
// (and answering on its published ports) before its spec counts as good; Config.RollbackSettle
// overrides it.
const RollbackSettle = 30 * time.Second

func (r *Reconciler) rollbackSettle() time.Duration {
	switch {
	case r.cfg.RollbackSettle < 0:
		return 0
	case r.cfg.RollbackSettle == 0:
		return RollbackSettle
	}
	return r.cfg.RollbackSettle
}

// finishRollback runs after a pass's report rows are made: it puts the recreated containers that have
// a good spec to fall back to on trial, marks held ones rolled-back in the report (the app's row and
// its stack container's; with a failure saying the manifest's spec is not applied), forgets
// uninstalled apps, saves the book if it changed and makes sure lockstepd wakes for the next trial
// deadline.
func (r *Reconciler) finishRollback(o *observed, actions []plan.Action, results map[string]result, rep *report.Report) {
	rb, now := r.rb, o.Now
	rb.Lock()
	defer rb.Unlock()
	// Containers of installed apps; an app whose manifest is invalid keeps its records.
	byName := map[string]*plan.Action{}
	keepApp := map[string]bool{}
	for i := range actions {
		a := &actions[i]
		switch {
		case a.Kind == plan.KindHold:
			keepApp[a.App] = true
		case a.Desired != nil && a.Kind != plan.KindRemove:
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
		if a.Kind != plan.KindRecreate || a.Desired == nil {
			continue
		}
		res, done := results[actionKey(a)]
		rec := rb.Apps[a.Name()]
		want := a.Desired.Hash()
		if !done || rec == nil || rec.Good == nil || rec.Good.Hash == want {
			continue
		}
		t := &plan.Trial{Hash: want, From: rec.Good.Hash, Started: now.UTC()}
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
		if d := plan.TrialDeadline(a.Desired, rec.Trial, &o.Observation); d.After(now) {
			soon(d)
		}
	}
	rows := map[string]*report.AppStatus{}
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
				if c := &row.Containers[k]; c.Name == member && c.State == report.StateRunning {
					c.State = report.StateRolledBack
				}
			}
		}
		if row.State == report.StateRunning {
			row.State = report.StateRolledBack
		}
		rep.Failures = append(rep.Failures, failure.Of(*a, fmt.Sprintf("the manifest's spec %s is not applied until the manifest changes: %s",
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
