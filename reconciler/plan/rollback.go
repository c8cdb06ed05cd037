package plan

import (
	"fmt"
	"time"

	"github.com/lockstep/lockstep/engine"
	"github.com/lockstep/lockstep/spec"
)

// The rollback book's records (package rollback keeps and saves them; its doc gives the rules) and
// the judging of containers on trial.

// Good is the last known-good container of an app.
type Good struct {
	Hash    string             `json:"spec_hash"`
	Scheme  string             `json:"hash_scheme"`
	Request spec.CreateRequest `json:"request"`
}

// Failed is a spec that was rolled back; it is not applied again until the manifest changes.
type Failed struct {
	Hash   string    `json:"spec_hash"`
	Reason string    `json:"reason"`
	At     time.Time `json:"at"`
}

// Trial is a recreated container not yet judged.
type Trial struct {
	Hash    string    `json:"spec_hash"`
	From    string    `json:"from_hash"` // the good spec it falls back to
	Started time.Time `json:"started"`
	Error   string    `json:"error,omitempty"` // the recreate's error, when it failed
}

// Record is kept per container (by podman name: an app's id for a one-container app). Planning never
// changes what its pointers point to: it replaces them.
type Record struct {
	App    string  `json:"app"`
	Good   *Good   `json:"good,omitempty"`
	Failed *Failed `json:"failed,omitempty"`
	Trial  *Trial  `json:"trial,omitempty"`
}

// Running is when the pass first saw a container without a health check running.
type Running struct {
	ID    string
	Since time.Time
}

// GoodDesired is d with its container replaced by the saved good one: same app, member, place and
// dependencies, the good request and its hash, the good request's health check, and no build (the
// manifest's build makes the new spec's image, not the good one's).
func GoodDesired(d *spec.Desired, g *Good) *spec.Desired {
	gd := *d
	scheme := g.Scheme
	if scheme == "" {
		scheme = spec.HashScheme
	}
	gd.Request, gd.Health, gd.Build, gd.Err = g.Request, g.Request.Health, nil, nil
	gd.Hashes = map[string]string{scheme: g.Hash}
	return &gd
}

func specHashOf(c *engine.Container) string {
	if c == nil {
		return ""
	}
	return c.Labels[spec.LabelSpecHash]
}

// TrialDeadline is when a container on trial must have been judged good. With a health check it
// counts from when this process began checking the container (after a restart of lockstepd, health
// is judged afresh; with no check yet, this pass makes one starting now), never before the trial
// started; without one, from the trial's start, by the settle window (and the reachability grace
// when ports are published).
func TrialDeadline(d *spec.Desired, t *Trial, obs *Observation) time.Time {
	if h := d.Health; h != nil {
		base := t.Started
		since := obs.Now
		if hs, ok := obs.Health[d.Name()]; ok {
			since = hs.Since
		}
		if since.After(base) {
			base = since
		}
		e := spec.Effective(h)
		return base.Add(e.StartPeriod + time.Duration(e.Retries+1)*(e.Interval+e.Timeout))
	}
	grace := obs.RollbackSettle
	if len(d.Request.Ports) > 0 {
		grace = max(grace, obs.ReachGrace)
	}
	return t.Started.Add(grace)
}

// judgeRollbacks runs right after Match: it judges the containers on trial (turning a failed one's
// action into KindRollback), holds apps whose manifest asks for a rolled-back spec, forgets a failed
// spec once the manifest asks for another, and records good specs.
func (res *Result) judgeRollbacks(actions []Action, obs *Observation) {
	for i := range actions {
		a := &actions[i]
		if a.Desired == nil || a.Kind == KindRemove {
			continue
		}
		rec, ok := res.Rollback[a.Name()]
		want := a.Desired.Hash()
		if ok && rec.Trial != nil && res.judgeTrial(a, &rec, obs) {
			res.Rollback[a.Name()] = rec
			continue
		}
		if ok && rec.Failed != nil {
			if rec.Failed.Hash == want && rec.Good != nil {
				hold(a, rec, obs.Adopted)
				res.Held[a.Name()] = true
				res.Rollback[a.Name()] = rec
				continue
			}
			// The manifest changed: a new attempt (or back to the good spec).
			rec.Failed = nil
			res.RollbackChanged = true
		}
		if ok {
			res.Rollback[a.Name()] = rec
		}
		res.noteGood(a, obs)
	}
}

// hold re-plans an app whose manifest asks for a spec that was rolled back: against its good spec,
// so a dead container is started, a missing one installed, a running one left alone.
func hold(a *Action, rec Record, adopted map[string]Adoption) {
	if a.Kind == KindAdopt {
		return // a container lockstep did not create holds the name: adoption decides
	}
	na := One(GoodDesired(a.Desired, rec.Good), a.Container, nil, adopted[a.Name()])
	if na.Kind == KindNone {
		na.Cause = fmt.Sprintf("rolled back: the manifest's spec %s failed (%s); running %s until the manifest changes",
			Short(rec.Failed.Hash), rec.Failed.Reason, Short(rec.Good.Hash))
	}
	*a = na
}

// noteGood records the running container of an unchanged app as good once it is healthy, or,
// without a health check, once the pass has seen it running for the settle window.
func (res *Result) noteGood(a *Action, obs *Observation) {
	c, want := a.Container, a.Desired.Hash()
	if a.Kind != KindNone || c == nil || c.State != "running" || specHashOf(c) != want {
		delete(res.Running, a.Name())
		return
	}
	if rec, ok := res.Rollback[a.Name()]; ok && rec.Good != nil && rec.Good.Hash == want {
		return
	}
	if a.Desired.Health != nil {
		if obs.Health[a.Name()].Status != healthHealthy {
			return
		}
	} else {
		rs, ok := res.Running[a.Name()]
		if !ok || rs.ID != c.ID {
			res.Running[a.Name()] = Running{ID: c.ID, Since: obs.Now}
			return
		}
		if obs.Now.Sub(rs.Since) < obs.RollbackSettle {
			return
		}
	}
	res.setGood(a)
}

func (res *Result) setGood(a *Action) {
	rec := res.Rollback[a.Name()]
	rec.App = a.App
	rec.Good = &Good{Hash: a.Desired.Hash(), Scheme: spec.HashScheme, Request: a.Desired.Request}
	rec.Trial = nil
	res.Rollback[a.Name()] = rec
	res.RollbackChanged = true
	delete(res.Running, a.Name())
	res.Notes = append(res.Notes, Note{App: a.App, Container: a.Name(), Message: "spec " + Short(rec.Good.Hash) + " recorded as good"})
}

// judgeTrial judges the container on trial of a's app (rec is its record, updated in place). It
// returns true when a's action is settled (a rollback, or a trial still pending on a running
// container), false to plan on.
func (res *Result) judgeTrial(a *Action, rec *Record, obs *Observation) bool {
	t := rec.Trial
	c := a.Container
	drop := func() bool {
		rec.Trial = nil
		res.RollbackChanged = true
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
			h, checked := obs.Health[a.Name()]
			switch {
			case h.Status == healthHealthy:
				res.Rollback[a.Name()] = *rec
				res.setGood(a)
				*rec = res.Rollback[a.Name()]
				res.Notes = append(res.Notes, Note{App: a.App, Container: a.Name(), Message: "updated spec is healthy: kept"})
				return false
			case h.Status == healthUnhealthy:
				reason = fmt.Sprintf("health check failing (%d in a row)", h.Streak)
			case !checked:
				return true // not checked by this process yet (lockstepd restarted): the monitor's pass judges
			case !obs.Now.Before(TrialDeadline(a.Desired, t, obs)):
				reason = fmt.Sprintf("health still %s after the start period and retries", h.Status)
			default:
				return true
			}
		} else {
			if obs.Now.Sub(t.Started) < obs.RollbackSettle {
				return true
			}
			addr := obs.Unreachable[a.Name()]
			switch {
			case addr == "":
				res.Rollback[a.Name()] = *rec
				res.setGood(a)
				*rec = res.Rollback[a.Name()]
				res.Notes = append(res.Notes, Note{App: a.App, Container: a.Name(), Message: "updated spec kept running: kept"})
				return false
			case !obs.Now.Before(TrialDeadline(a.Desired, t, obs)):
				reason = addr
			default:
				return true
			}
		}
	}
	cause := fmt.Sprintf("new spec %s not healthy after %s: %s; back to %s", Short(t.Hash),
		obs.Now.Sub(t.Started).Round(time.Second), reason, Short(rec.Good.Hash))
	rec.Failed = &Failed{Hash: t.Hash, Reason: cause, At: obs.Now.UTC()}
	rec.Trial = nil
	res.RollbackChanged = true
	res.Held[a.Name()] = true
	delete(res.Reach, a.Name()) // the good container gets its own reachability grace
	a.Desired = GoodDesired(a.Desired, rec.Good)
	a.Kind, a.Cause = KindRollback, cause
	res.Notes = append(res.Notes, Note{App: a.App, Container: a.Name(), Message: cause, Warn: true})
	return true
}
