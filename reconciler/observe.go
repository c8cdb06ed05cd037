package reconciler

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/lockstep/lockstep/engine"
	"github.com/lockstep/lockstep/manifest"
	"github.com/lockstep/lockstep/reconciler/hooks"
	"github.com/lockstep/lockstep/reconciler/mounts"
	"github.com/lockstep/lockstep/reconciler/plan"
	"github.com/lockstep/lockstep/reconciler/probe"
	"github.com/lockstep/lockstep/report"
	"github.com/lockstep/lockstep/spec"
)

// A pass observes once, then plans once (package plan, pure), then executes. This file is the
// observing: everything here only reads (the manifests are loaded and podman listed before), so a
// dry run (Observe, lockstepctl plan) that plans from it changes nothing by construction. Secrets
// not made yet get a value in memory (package secrets' Observe) that the executor saves before
// anything uses it; pre-start hooks are rendered and compared, and written by the executor.

// ReachGrace is how long an app may be unreachable before lockstep repairs it (a start-up that is
// still binding its port is not a fault); an app's health start_period extends it. "Running" is not
// "reachable": firewall reloads and network start-up races leave containers up with dead published
// ports, so every pass probes the published TCP ports of running apps from the host (package probe).
const ReachGrace = 20 * time.Second

// observed is what one pass saw: the desired containers, plan's Observation, and the rendered hook
// outputs the executor writes.
type observed struct {
	set     *manifest.Set
	desired []*spec.Desired
	plan.Observation
	hookOut map[string][]*hooks.Output // by app, as Observation.Hooks
	prints  map[string]string          // fingerprints of containers' read-only mounts (reconciler/mounts)
}

// observe gathers a pass's observation from the loaded set and podman's list, reading only.
func (r *Reconciler) observe(ctx context.Context, set *manifest.Set, cs []engine.Container) *observed {
	o := &observed{set: set, hookOut: map[string][]*hooks.Output{}}
	o.Now = r.cfg.Now()
	o.Invalid, o.Containers = set.Invalid, cs
	o.ReachGrace, o.RollbackSettle = r.cfg.ReachGrace, r.rollbackSettle()
	w := &spec.Wiring{Roots: r.cfg.Roots, Set: set, Value: r.exportValue, NetworkPrefix: r.cfg.NetworkPrefix, DefaultNetwork: r.cfg.DefaultNetwork}
	for _, a := range set.Apps {
		o.desired = append(o.desired, spec.DesiredsFor(a, w)...)
	}
	o.Adopted, o.Health = map[string]plan.Adoption{}, r.health.Snapshot()
	r.mu.Lock()
	for k, v := range r.adopted {
		o.Adopted[k] = v
	}
	r.mu.Unlock()
	o.Reach, o.Backoff = map[string]plan.Reach{}, map[string]plan.Backoff{}
	for k, v := range r.reach {
		o.Reach[k] = v
	}
	for k, v := range r.backoff {
		o.Backoff[k] = *v
	}
	o.DepWaits = map[string]string{}
	for k, v := range r.depWaits {
		o.DepWaits[k] = v
	}
	o.Rollback, o.Running = map[string]plan.Record{}, map[string]plan.Running{}
	r.rb.Lock()
	for k, v := range r.rb.Apps {
		o.Rollback[k] = *v
	}
	for k, v := range r.rb.Running {
		o.Running[k] = v
	}
	r.rb.Unlock()
	o.Unreachable = probeRunning(ctx, o.desired, cs)
	o.prints = mounts.Fingerprints(o.desired)
	o.Hooks = map[string][]plan.Hook{}
	for _, app := range set.Apps {
		for _, h := range app.Hooks.PreStart {
			out, err := hooks.Render(set, app, h, r.cfg.Roots, r.exportValue)
			o.Hooks[app.ID] = append(o.Hooks[app.ID], plan.Hook{Name: h.HookName(), Path: h.Path, Containers: h.Containers, Changed: out != nil && out.Changed, Err: err})
			o.hookOut[app.ID] = append(o.hookOut[app.ID], out)
		}
	}
	return o
}

// probeRunning probes, in parallel, the published TCP ports of every running container of a
// desired one that publishes any, and returns what failed by container name.
func probeRunning(ctx context.Context, desired []*spec.Desired, cs []engine.Container) map[string]string {
	running := map[string]bool{}
	for _, c := range cs {
		if c.State == "running" {
			running[c.Name] = true
		}
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	dead := map[string]string{}
	sem := make(chan struct{}, 8)
	for _, d := range desired {
		if len(d.Request.Ports) == 0 || !running[d.Name()] {
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func(d *spec.Desired) {
			defer wg.Done()
			defer func() { <-sem }()
			if why := probe.Container(ctx, d); why != "" {
				mu.Lock()
				dead[d.Name()] = why
				mu.Unlock()
			}
		}(d)
	}
	wg.Wait()
	return dead
}

// keep takes the books as the plan leaves them: reachability, backoff, rollback.
func (r *Reconciler) keep(log logrus.FieldLogger, res *plan.Result) {
	r.reach, r.depWaits = res.Reach, res.DepWaits
	for _, app := range res.ForgetBackoff {
		delete(r.backoff, app)
	}
	rb := r.rb
	rb.Lock()
	rb.Apps = map[string]*plan.Record{}
	for k, v := range res.Rollback {
		rb.Apps[k] = &v
	}
	rb.Running, rb.Held = res.Running, res.Held
	if res.RollbackChanged {
		rb.Dirty = true
	}
	rb.Unlock()
	for _, n := range res.Notes {
		l := log.WithField("app", n.App).WithField("container", n.Container)
		if n.Warn {
			l.Warn(n.Message)
		} else {
			l.Info(n.Message)
		}
	}
}

// prepare is the start of executing a plan: it saves the secrets the observation made up, then
// writes the pre-start hooks the plan asks for. What fails blocks the actions of its app (and, for
// a secret, of the apps that use it), so nothing starts on a value or a config that is not there.
func (r *Reconciler) prepare(log logrus.FieldLogger, o *observed, res *plan.Result) {
	block := func(app string, err error, users bool) {
		for i := range res.Actions {
			a := &res.Actions[i]
			if a.Desired == nil || a.Kind == plan.KindRemove || a.Blocked != nil {
				continue
			}
			if a.App == app || (users && slices.Contains(a.Desired.Deps, app)) {
				a.Blocked = err
			}
		}
	}
	for app, err := range r.secrets.Commit() {
		log.WithField("app", app).Error(err.Error())
		block(app, err, true)
	}
	failed := map[string]bool{}
	for _, w := range res.Hooks {
		if failed[w.App] {
			continue
		}
		h, out := o.Hooks[w.App][w.Index], o.hookOut[w.App][w.Index]
		if err := hooks.Apply(out); err != nil {
			err = fmt.Errorf("pre-start hook %s: %w", h.Name, err)
			log.WithField("app", w.App).Warn(err.Error())
			failed[w.App] = true
			block(w.App, err, false)
			continue
		}
		if h.Changed {
			log.WithFields(logrus.Fields{"app": w.App, "hook": h.Name}).Info("pre-start hook changed " + h.Path)
		}
	}
}

// StartProbeWait bounds how long a pass waits, after starting a container without a health check
// that publishes TCP ports, for a probe to say it answers: the report (an install's reply) says
// running only then, and starting until a later pass's probe does.
const StartProbeWait = 2 * time.Second

// probeStarted probes, in parallel, the containers without a health check that this pass started
// and that publish TCP ports, each again every 200 ms until it answers or StartProbeWait has passed,
// and returns those that never answered.
func (r *Reconciler) probeStarted(ctx context.Context, actions []plan.Action, results map[string]result) map[string]bool {
	var mu sync.Mutex
	var wg sync.WaitGroup
	silent := map[string]bool{}
	for _, a := range actions {
		res := results[actionKey(a)]
		if a.Kind == plan.KindNone || a.Desired == nil || a.Desired.Health != nil || res.err != nil || res.state != report.StateRunning || len(a.Desired.Request.Ports) == 0 {
			continue
		}
		wg.Add(1)
		go func(d *spec.Desired) {
			defer wg.Done()
			deadline := time.Now().Add(StartProbeWait)
			for probe.Container(ctx, d) != "" {
				if !time.Now().Before(deadline) || ctx.Err() != nil {
					mu.Lock()
					silent[d.Name()] = true
					mu.Unlock()
					return
				}
				time.Sleep(200 * time.Millisecond)
			}
		}(a.Desired)
	}
	wg.Wait()
	return silent
}
