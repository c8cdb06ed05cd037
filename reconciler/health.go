package reconciler

import (
	"context"
	"errors"
	"time"

	"github.com/lockstep/lockstep/reconciler/plan"
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
		if old, ok := r.healthTargets[app]; ok && !t.fresh {
			t.started = old.started
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
	return HealthUnknown, 0
}

// RunHealthChecks runs due health checks until ctx ends, calling changed(app, status) when an app's
// health changes (lockstepd then asks for a pass: an unhealthy app is restarted, under backoff, and
// the report shows the new health).
func (r *Reconciler) RunHealthChecks(ctx context.Context, hc HealthChecker, changed func(app, status string)) {
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
			if errors.Is(err, ErrConflict) || errors.Is(err, ErrNotFound) || errors.Is(err, ErrUnavailable) {
				continue // not running (a pass sees to that) or podman away: nothing to judge
			}
			if err != nil {
				// The check could not complete (it hung past its timeout, ...): that is a failure.
				result = HealthUnhealthy
				r.cfg.Log.WithField("app", t.app).WithError(err).Debug("health check")
			}
			// podman 4.3 answers with this run's result only: lockstep counts the failing streak.
			r.mu.Lock()
			prevState := r.health[t.container]
			r.mu.Unlock()
			streak, status := 0, HealthHealthy
			if result != HealthHealthy {
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
					status, streak = HealthStarting, 0 // failures in the start period do not count
				case streak >= retries:
					status = HealthUnhealthy
				case prevState != nil:
					status = prevState.status
				default:
					status = HealthStarting
				}
			}
			r.mu.Lock()
			prev := r.health[t.container]
			r.health[t.container] = &healthState{status: status, streak: streak, lastRun: now}
			r.mu.Unlock()
			if prev == nil || prev.status != status {
				changed(t.app, status)
			}
		}
	}
}

// waitForHealthyDependencies holds back installing or starting an app until each dependency that
// declares a health check is healthy (package plan), by the monitor's view of health.
func (r *Reconciler) waitForHealthyDependencies(actions []Action) {
	plan.WaitForHealthyDependencies(actions, func(name string) string {
		h, _ := r.healthOf(name)
		return h
	})
}
