package reconciler

import (
	"context"
	"errors"
	"time"

	"github.com/lockstep/lockstep/engine"
	"github.com/lockstep/lockstep/reconciler/deadline"
	"github.com/lockstep/lockstep/report"
	"github.com/lockstep/lockstep/spec"
)

// HealthChecker runs a container's health check on demand (podman's RunHealthCheck): podman 4.3
// schedules health checks through systemd timers, so without them checks never run; lockstep runs
// them itself on each app's interval.
type HealthChecker interface {
	RunHealthCheck(ctx context.Context, nameOrID string) (status string, failingStreak int, err error)
}

// DefaultHealthInterval applies when a health check names no interval (package spec's default).
const DefaultHealthInterval = spec.DefaultHealthInterval

type healthTarget struct {
	app, container string
	interval       time.Duration
	startPeriod    time.Duration
	retries        int
	started        time.Time // when lockstep first saw the container running
	fresh          bool      // (re)started by the pass that set it
	// gen changes whenever the container is (re)started by a pass or first checked: a result of a
	// check that began under an older gen belongs to a container (or a run) that is gone, and is
	// dropped instead of written over the new one's health.
	gen uint64
}

type healthState struct {
	status  string
	streak  int
	lastRun time.Time
}

// setHealthTargets is called at the end of every pass with the running apps that declare a health check.
func (r *Reconciler) setHealthTargets(targets map[string]healthTarget) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for app, t := range targets {
		old, ok := r.healthTargets[app]
		if ok && !t.fresh {
			t.started, t.gen = old.started, old.gen
		} else {
			r.healthGen++
			t.gen = r.healthGen
		}
		if t.fresh {
			delete(r.health, app)
		}
		targets[app] = t
	}
	r.healthTargets = targets
	for app := range r.health {
		if _, ok := targets[app]; !ok {
			delete(r.health, app)
		}
	}
}

// restartedHealth forgets a container's health when a pass restarts it, and gives its target a new
// generation: a check that ran against the old process must not be written after it.
func (r *Reconciler) restartedHealth(name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.health, name)
	if t, ok := r.healthTargets[name]; ok {
		r.healthGen++
		t.gen = r.healthGen
		r.healthTargets[name] = t
	}
}

// healthOf returns a container's health as the report shows it ("" when it is not checked) and its
// failing streak.
func (r *Reconciler) healthOf(name string) (string, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.healthTargets[name]; !ok {
		return "", 0
	}
	if h, ok := r.health[name]; ok {
		return h.status, h.streak
	}
	return report.HealthUnknown, 0
}

// RunHealthChecks runs due health checks until ctx ends, calling changed(app, status) when an app's
// health changes (lockstepd then asks for a pass: an unhealthy app is restarted, under backoff, and
// the report shows the new health).
func (r *Reconciler) RunHealthChecks(ctx context.Context, hc HealthChecker, changed func(app, status string)) {
	hc = deadline.Health(hc, r.cfg.Timeouts.Call)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		now := r.cfg.Now()
		r.mu.Lock()
		var due []healthTarget
		for app, t := range r.healthTargets {
			h := r.health[app]
			if h == nil || now.Sub(h.lastRun) >= t.interval {
				due = append(due, t)
			}
		}
		r.mu.Unlock()
		for _, t := range due {
			result, _, err := hc.RunHealthCheck(ctx, t.container)
			if errors.Is(err, engine.ErrConflict) || errors.Is(err, engine.ErrNotFound) || errors.Is(err, engine.ErrUnavailable) {
				continue // not running (a pass sees to that) or podman away: nothing to judge
			}
			if err != nil {
				// The check could not complete (it hung past its timeout, ...): that is a failure.
				result = report.HealthUnhealthy
				r.cfg.Log.WithField("app", t.app).WithError(err).Debug("health check")
			}
			// podman 4.3 answers with this run's result only: lockstep counts the failing streak.
			r.mu.Lock()
			prevState := r.health[t.container]
			cur, ok := r.healthTargets[t.container]
			r.mu.Unlock()
			if !ok || cur.gen != t.gen {
				continue // a pass restarted or dropped the container while the check ran: stale
			}
			streak, status := 0, report.HealthHealthy
			if result != report.HealthHealthy {
				if prevState != nil {
					streak = prevState.streak
				}
				streak++
				retries := t.retries
				if retries == 0 {
					retries = spec.DefaultHealthRetries
				}
				switch {
				case now.Sub(t.started) < t.startPeriod:
					status, streak = report.HealthStarting, 0 // failures in the start period do not count
				case streak >= retries:
					status = report.HealthUnhealthy
				case prevState != nil:
					status = prevState.status
				default:
					status = report.HealthStarting
				}
			}
			r.mu.Lock()
			if cur, ok := r.healthTargets[t.container]; !ok || cur.gen != t.gen {
				r.mu.Unlock()
				continue
			}
			prev := r.health[t.container]
			r.health[t.container] = &healthState{status: status, streak: streak, lastRun: now}
			r.mu.Unlock()
			if prev == nil || prev.status != status {
				changed(t.app, status)
			}
		}
	}
}
