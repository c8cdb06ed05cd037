package reconciler_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/lockstep/lockstep/report"
)

// TestUnreachableAppAsksForItsOwnReprobe (issue 16 point 9), on real podman: an app without a health
// check whose server binds its port 4 s after start is reported starting, not running, by the pass
// that installs it (the install's reply), and that pass asks for its own next pass within a second;
// the passes after it, each asking for the next (spaced), find it unreachable until it answers, then
// running, with no other trigger needed.
func TestUnreachableAppAsksForItsOwnReprobe(t *testing.T) {
	f := newFixture(t)
	port := freePort(t)
	f.app("it-slow", fmt.Sprintf(`  container:
    image: %s
    command: [sh, -c, 'sleep 4; exec httpd -f -p 8080 -h /www']
    ports: ["127.0.0.1:%d:8080/tcp"]
    stop_grace_period: 1s
`, bbImage, port))
	start := time.Now()
	r := f.pass()
	if actions(r) != "it-slow:install" || appRow(r, "it-slow").State != report.StateStarting || len(r.Failures) != 0 {
		t.Fatalf("install: %s %+v %+v", actions(r), r.Apps, r.Failures)
	}
	if w := f.rec.NextWake(); w.IsZero() || w.After(time.Now().Add(time.Second)) {
		t.Fatalf("the install asked for no re-probe soon: wake %v", w)
	}
	var states []string
	for time.Since(start) < 20*time.Second {
		w := f.rec.NextWake()
		if w.IsZero() {
			t.Fatalf("an unreachable app asked for no pass (states %v)", states)
		}
		time.Sleep(time.Until(w))
		r = f.pass()
		st := appRow(r, "it-slow").State
		states = append(states, st)
		if st == "running" {
			break
		}
		if st != report.StateUnreachable || !strings.Contains(r.Failures[0].Error, "running but unreachable") {
			t.Fatalf("while binding: %+v %+v", r.Apps, r.Failures)
		}
	}
	if states[len(states)-1] != "running" || len(r.Failures) != 0 || len(r.Actions) != 0 {
		t.Fatalf("never running: states %v, %+v", states, r.Failures)
	}
	if w := f.rec.NextWake(); !w.IsZero() {
		t.Fatalf("still asking for passes once it answers: %v", w)
	}
}
