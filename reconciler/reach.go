package reconciler

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/lockstep/lockstep/reconciler/probe"
)

// "Running" is not "reachable": firewall reloads and network start-up races leave containers up with
// dead published ports. Every pass probes the published TCP ports of running apps from the host
// (package probe: a TCP connect, or an HTTP GET where the manifest names a path); this file turns
// what they find into the report and into repairs.

// ReachGrace is how long an app may be unreachable before lockstep repairs it (a start-up that is
// still binding its port is not a fault); an app's health start_period extends it.
const ReachGrace = 20 * time.Second

type reachState struct {
	since    time.Time // first seen unreachable
	repaired int       // repairs made since: 1 restart, then recreates
}

// checkReach probes the running, unchanged apps in parallel and turns a lasting failure into a
// repair: first a restart, then recreates, each under restart backoff. It returns the apps found
// unreachable (by container name, with what failed: the address that did not answer, or the HTTP GET
// and its status).
func (r *Reconciler) checkReach(ctx context.Context, actions []Action, now time.Time) map[string]string {
	var mu sync.Mutex
	var wg sync.WaitGroup
	dead := map[string]string{}
	sem := make(chan struct{}, 8)
	for i := range actions {
		a := &actions[i]
		if a.Kind != KindNone || a.Desired == nil || len(a.Desired.Request.Ports) == 0 {
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func(a *Action) {
			defer wg.Done()
			defer func() { <-sem }()
			if why := probe.Container(ctx, a.Desired); why != "" {
				mu.Lock()
				dead[a.Name()] = why
				mu.Unlock()
			}
		}(a)
	}
	wg.Wait()
	for i := range actions {
		a := &actions[i]
		why, bad := dead[a.Name()]
		st := r.reach[a.Name()]
		if !bad {
			if a.Kind == KindNone {
				delete(r.reach, a.Name())
			}
			continue
		}
		if st == nil {
			st = &reachState{since: now}
			r.reach[a.Name()] = st
		}
		grace := r.cfg.ReachGrace
		if h := a.Desired.Health; h != nil && h.StartPeriod.D() > grace {
			grace = h.StartPeriod.D()
		}
		if now.Sub(st.since) < grace {
			continue
		}
		st.repaired++
		if st.repaired == 1 {
			a.Kind = KindRestart
		} else {
			a.Kind = KindForceRecreate
		}
		a.Cause = fmt.Sprintf("running but unreachable: %s (for %s)", why, now.Sub(st.since).Round(time.Second))
	}
	return dead
}
