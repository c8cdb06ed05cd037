package reconciler_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lockstep/lockstep/report"
)

// TestDependentWaitsForRepairedDependency (issue 16 point 1), on real podman: after a dependency
// with a health check (a bitcoind stand-in that takes 3 s to warm up) is killed, the pass that starts
// it leaves its running dependent alone and the report says the dependent waits for it to be
// healthy; once it is healthy the next pass restarts the dependent once; that restart does not
// count toward the dependent's backoff (a crash right after it is repaired at once, not held back).
func TestDependentWaitsForRepairedDependency(t *testing.T) {
	f := newFixture(t)
	f.app("it-btc", fmt.Sprintf(`  container:
    image: %s
    command: [sh, -c, 'trap "exit 0" TERM; rm -f /tmp/ready; sleep 3; touch /tmp/ready; while :; do sleep 1; done']
    stop_grace_period: 1s
  health: {command: [test, -f, /tmp/ready], interval: 1s, timeout: 2s, retries: 2, start_period: 10s}
`, bbImage))
	f.app("it-lnd", worker(bbImage)+"  requires:\n    apps: [it-btc]\n")
	// starts counts lnd's starts from its log, waiting up to 5 s for it to reach want (a started
	// shell writes its line a moment after the start).
	starts := func(want int) int {
		n := 0
		for i := 0; i < 50; i++ {
			b, _ := os.ReadFile(filepath.Join(f.data, "it-lnd", "data", "log"))
			if n = strings.Count(string(b), "started"); n >= want {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		return n
	}
	failure := func(r *report.Report, app string) string {
		for _, x := range r.Failures {
			if x.App == app {
				return x.Error
			}
		}
		return ""
	}
	hw := watchHealth(t, f.rec, f)
	if r := f.pass(); actions(r) != "it-btc:install" {
		t.Fatalf("install: %s %+v", actions(r), r.Failures)
	}
	hw.waitFor(t, "it-btc=healthy")
	if r := f.pass(); actions(r) != "it-lnd:install" {
		t.Fatalf("install of the dependent: %s %+v", actions(r), r.Failures)
	}
	noFailures(t, f.pass())
	if n := starts(1); n != 1 {
		t.Fatalf("lnd started %d times", n)
	}

	f.pm.MustCLI(t, "kill", "it-btc")
	f.pm.MustCLI(t, "wait", "it-btc")
	r := f.pass()
	if actions(r) != "it-btc:start" {
		t.Fatalf("repair pass: %s (the dependent must not restart before its dependency is healthy)", actions(r))
	}
	if w := failure(r, "it-lnd"); !strings.Contains(w, "waiting for it-btc to be healthy") || appRow(r, "it-lnd").State != "running" {
		t.Fatalf("lnd: failure %q, row %+v", w, appRow(r, "it-lnd"))
	}
	// Passes while it warms up change nothing and keep saying so.
	r = f.pass()
	if actions(r) != "" || !strings.Contains(failure(r, "it-lnd"), "waiting for it-btc to be healthy") || starts(1) != 1 {
		t.Fatalf("warming up: %s %+v, %d starts", actions(r), r.Failures, starts(1))
	}
	hw.waitFor(t, "it-btc=healthy")
	r = f.pass()
	if actions(r) != "it-lnd:restart" || r.Actions[0].Cause != "dependency it-btc was restarted and is healthy again" || len(r.Failures) != 0 {
		t.Fatalf("after recovery: %+v %+v", r.Actions, r.Failures)
	}
	if n := starts(2); n != 2 {
		t.Fatalf("lnd started %d times, want 2 (once after the recovery)", n)
	}
	noFailures(t, f.pass())
	// lnd crashes now: repaired at once, since its restart after the dependency was not a repair.
	f.pm.MustCLI(t, "kill", "it-lnd")
	f.pm.MustCLI(t, "wait", "it-lnd")
	if r := f.pass(); actions(r) != "it-lnd:start" {
		t.Fatalf("lnd's first crash: %s %+v (held back by a backoff it should not have)", actions(r), r.Failures)
	}
}
