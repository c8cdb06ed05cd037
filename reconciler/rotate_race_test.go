package reconciler_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lockstep/lockstep/reconciler"
)

// A RotateSecret arriving while a pass runs, between its plan (env) and its hooks: applied by the runner
// at the start of the next pass, env and hooks both see the new value and the consumer restarts once.
// Seen on the code before issue 15 (the rotation applied at once from its D-Bus goroutine): the pass
// running rendered the hooks with the new value and restarted the consumer, the rotation's own pass
// then recreated it for its env ("stop cons, start cons, stop cons, create cons, start cons").
// Config.Now holds the pass right after it planned: its second call in a pass.
func TestRotationDuringAPassRestartsTheConsumerOnce(t *testing.T) {
	f := newFixture(t)
	rc := &recording{Client: f.client, names: map[string]string{}}
	var mu sync.Mutex
	armed, calls := false, 0
	mid, release := make(chan struct{}), make(chan struct{})
	now := func() time.Time {
		mu.Lock()
		a := armed
		if a {
			calls++
		}
		c := calls
		mu.Unlock()
		// armed is cleared before release, so the blocked call is the only one.
		if a && c == 2 {
			close(mid)
			<-release
		}
		return time.Now()
	}
	rec, err := reconciler.New(reconciler.Config{AppsDir: f.apps, StateDir: filepath.Join(f.dir, "state"), Roots: rootsOf(f),
		ReachGrace: f.reachGrace, NetworkPrefix: f.netPrefix(), Now: now}, rc)
	if err != nil {
		t.Fatal(err)
	}
	f.rec = rec
	wireApps(f)
	f.app("cons", fmt.Sprintf(`  requires:
    apps: [chain]
  container:
    image: %s
    command: %s
    env: {CHAIN_HOST: "${chain.rpc_host}", CHAIN_PASS: "${chain.rpc_password}"}
    stop_grace_period: 1s
  hooks:
    pre_start:
      - {name: cons-conf, template: cons.conf.tmpl, path: cons.conf, mode: "0600"}
`, bbImage, sleeper))
	mkdirAll(t, filepath.Join(f.data, "prov", "pub"))
	noFailures(t, f.pass())
	if r := f.pass(); len(r.Actions) != 0 {
		t.Fatalf("second pass acted: %s", actions(r))
	}
	rc.take()
	mu.Lock()
	armed = true
	mu.Unlock()
	run := reconciler.NewRunner(f.rec)
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() { run.Run(ctx); close(stopped) }()
	defer func() { cancel(); <-stopped }()
	pass := run.Request("interval")
	<-mid
	rotate := run.Submit(reconciler.Op{Kind: reconciler.OpRotateSecret, App: "prov", Name: "rpc_password"})
	mu.Lock()
	armed = false
	mu.Unlock()
	close(release)
	wctx, wcancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer wcancel()
	r1, err := pass.Wait(wctx)
	if err != nil {
		t.Fatal(err)
	}
	r2, err := rotate.Wait(wctx) // the rotation's pass
	if err != nil {
		t.Fatal(err)
	}
	noFailures(t, r2)
	if r2.PassID != r1.PassID+1 || r2.Trigger != "rotate-secret" {
		t.Fatalf("rotation answered with pass %d (%s) after pass %d", r2.PassID, r2.Trigger, r1.PassID)
	}
	calls2 := rc.take()
	t.Logf("pass during rotation: %s; rotation's pass: %s; calls %s", actions(r1), actions(r2), calls2)
	if n := strings.Count(calls2, "start cons"); n != 1 {
		t.Fatalf("the consumer was started %d times after the rotation, want once: %s", n, calls2)
	}
}
