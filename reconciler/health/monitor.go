package health

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/lockstep/lockstep/engine"
	"github.com/lockstep/lockstep/reconciler/deadline"
	"github.com/lockstep/lockstep/reconciler/plan"
	"github.com/lockstep/lockstep/report"
	"github.com/lockstep/lockstep/spec"
)

// Checker runs a container's health check on demand (podman's RunHealthCheck).
type Checker interface {
	RunHealthCheck(ctx context.Context, nameOrID string) (status string, failingStreak int, err error)
}

// Target is a running container with a health check, as a pass hands it to the monitor.
type Target struct {
	App, Container string
	Interval       time.Duration
	StartPeriod    time.Duration
	Retries        int
	Started        time.Time // when lockstep first saw the container running
	Fresh          bool      // (re)started by the pass that set it
	// gen changes whenever the container is (re)started by a pass or first checked: a result of a
	// check that began under an older gen belongs to a container (or a run) that is gone, and is
	// dropped instead of written over the new one's health.
	gen uint64
}

// Result is the last check's outcome for a container.
type Result struct {
	Status  string
	Streak  int
	LastRun time.Time
}

// Monitor holds the targets and their results; its methods are safe for concurrent use.
type Monitor struct {
	mu      sync.Mutex
	targets map[string]Target  // by container name
	results map[string]*Result // by container name
	gen     uint64             // the last target generation given
}

// New returns a monitor with no targets.
func New() *Monitor {
	return &Monitor{targets: map[string]Target{}, results: map[string]*Result{}}
}

// Set is called at the end of every pass with the running containers that declare a health check: a
// target kept from the last pass keeps its start and generation unless it is fresh; results of
// containers no longer targeted, and of fresh ones, are dropped.
func (m *Monitor) Set(targets map[string]Target) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for name, t := range targets {
		old, ok := m.targets[name]
		if ok && !t.Fresh {
			t.Started, t.gen = old.Started, old.gen
		} else {
			m.gen++
			t.gen = m.gen
		}
		if t.Fresh {
			delete(m.results, name)
		}
		targets[name] = t
	}
	m.targets = targets
	for name := range m.results {
		if _, ok := targets[name]; !ok {
			delete(m.results, name)
		}
	}
}

// Restarted forgets a container's health when a pass restarts it, and gives its target a new
// generation: a check that ran against the old process must not be written after it.
func (m *Monitor) Restarted(name string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.results, name)
	if t, ok := m.targets[name]; ok {
		m.gen++
		t.gen = m.gen
		m.targets[name] = t
	}
}

// Put records a result for a container (the monitor's own checks, and tests standing in for them).
func (m *Monitor) Put(name string, r Result) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.results[name] = &r
}

// Of returns a container's health as the report shows it ("" when it is not checked) and its
// failing streak.
func (m *Monitor) Of(name string) (string, int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.targets[name]; !ok {
		return "", 0
	}
	if h, ok := m.results[name]; ok {
		return h.Status, h.Streak
	}
	return report.HealthUnknown, 0
}

// Snapshot is the monitor's view for a pass's observation: every target's health (unknown until
// its first check) and since when it is checked.
func (m *Monitor) Snapshot() map[string]plan.Health {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[string]plan.Health, len(m.targets))
	for name, t := range m.targets {
		h := plan.Health{Status: report.HealthUnknown, Since: t.Started}
		if r, ok := m.results[name]; ok {
			h.Status, h.Streak = r.Status, r.Streak
		}
		out[name] = h
	}
	return out
}

// Run runs due health checks until ctx ends, each within timeout, calling changed(app, status) when
// a container's health changes (lockstepd then asks for a pass: an unhealthy app is restarted,
// under backoff, and the report shows the new health).
func (m *Monitor) Run(ctx context.Context, hc Checker, timeout time.Duration, now func() time.Time, log logrus.FieldLogger, changed func(app, status string)) {
	hc = deadline.Health(hc, timeout)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		t0 := now()
		m.mu.Lock()
		var due []Target
		for name, t := range m.targets {
			h := m.results[name]
			if h == nil || t0.Sub(h.LastRun) >= t.Interval {
				due = append(due, t)
			}
		}
		m.mu.Unlock()
		for _, t := range due {
			m.check(ctx, hc, t, t0, log, changed)
		}
	}
}

func (m *Monitor) check(ctx context.Context, hc Checker, t Target, now time.Time, log logrus.FieldLogger, changed func(app, status string)) {
	result, _, err := hc.RunHealthCheck(ctx, t.Container)
	if errors.Is(err, engine.ErrConflict) || errors.Is(err, engine.ErrNotFound) || errors.Is(err, engine.ErrUnavailable) {
		return // not running (a pass sees to that) or podman away: nothing to judge
	}
	if err != nil {
		// The check could not complete (it hung past its timeout, ...): that is a failure.
		result = report.HealthUnhealthy
		log.WithField("app", t.App).WithError(err).Debug("health check")
	}
	// podman 4.3 answers with this run's result only: lockstep counts the failing streak.
	m.mu.Lock()
	if cur, ok := m.targets[t.Container]; !ok || cur.gen != t.gen {
		m.mu.Unlock()
		return // a pass restarted or dropped the container while the check ran: stale
	}
	prev := m.results[t.Container]
	streak, status := 0, report.HealthHealthy
	if result != report.HealthHealthy {
		if prev != nil {
			streak = prev.Streak
		}
		streak++
		retries := t.Retries
		if retries == 0 {
			retries = spec.DefaultHealthRetries
		}
		switch {
		case now.Sub(t.Started) < t.StartPeriod:
			status, streak = report.HealthStarting, 0 // failures in the start period do not count
		case streak >= retries:
			status = report.HealthUnhealthy
		case prev != nil:
			status = prev.Status
		default:
			status = report.HealthStarting
		}
	}
	m.results[t.Container] = &Result{Status: status, Streak: streak, LastRun: now}
	m.mu.Unlock()
	if prev == nil || prev.Status != status {
		changed(t.App, status)
	}
}
