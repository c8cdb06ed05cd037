package reconciler

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/lockstep/lockstep/manifest"
)

// "Running" is not "reachable": firewall reloads and network start-up races leave containers up with
// dead published ports. Every pass probes the published TCP ports of running apps from the host.

// StateUnreachable is a running app whose published port does not answer.
const StateUnreachable = "unreachable"

// ReachGrace is how long an app may be unreachable before lockstep repairs it (a start-up that is
// still binding its port is not a fault); an app's health start_period extends it.
const ReachGrace = 20 * time.Second

const probeTimeout = time.Second

type reachState struct {
	since    time.Time // first seen unreachable
	repaired int       // repairs made since: 1 restart, then recreates
}

// probeTarget returns the address to dial for a published TCP port.
func probeTarget(p manifest.Port) string {
	host := p.HostIP
	switch host {
	case "", "0.0.0.0":
		host = "127.0.0.1"
	case "::":
		host = "::1"
	}
	return net.JoinHostPort(host, strconv.Itoa(int(p.HostPort)))
}

// probe dials every published TCP port of d; it returns the first that does not answer, or "".
func probe(ctx context.Context, d *Desired) string {
	for _, p := range d.Request.Ports {
		if p.HostPort == 0 || p.Protocol != "tcp" {
			continue
		}
		addr := probeTarget(p)
		var dialer net.Dialer
		cctx, cancel := context.WithTimeout(ctx, probeTimeout)
		c, err := dialer.DialContext(cctx, "tcp", addr)
		cancel()
		if err != nil {
			return addr
		}
		c.Close()
	}
	return ""
}

// checkReach probes the running, unchanged apps in parallel and turns a lasting failure into a
// repair: first a restart, then recreates, each under restart backoff. It returns the apps found
// unreachable (by container name, with the address that did not answer).
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
			if addr := probe(ctx, a.Desired); addr != "" {
				mu.Lock()
				dead[a.Name()] = addr
				mu.Unlock()
			}
		}(a)
	}
	wg.Wait()
	for i := range actions {
		a := &actions[i]
		addr, bad := dead[a.Name()]
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
		a.Cause = fmt.Sprintf("running but unreachable: %s does not answer (for %s)", addr, now.Sub(st.since).Round(time.Second))
	}
	return dead
}
