package reconciler_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lockstep/lockstep/reconciler"
	"github.com/lockstep/lockstep/report"
)

// healthWatch runs a reconciler's health monitor (as lockstepd does) and lets a test wait for an
// app's health to change to a given status.
type healthWatch struct {
	mu      sync.Mutex
	changes chan string
	stop    context.CancelFunc
	done    chan struct{}
}

func watchHealth(t *testing.T, rec *reconciler.Reconciler, f *fixture) *healthWatch {
	ctx, cancel := context.WithCancel(context.Background())
	h := &healthWatch{changes: make(chan string, 100), stop: cancel, done: make(chan struct{})}
	go func() {
		defer close(h.done)
		rec.RunHealthChecks(ctx, f.client, func(app, status string) {
			select {
			case h.changes <- app + "=" + status:
			default:
			}
		})
	}()
	t.Cleanup(h.close)
	return h
}

func (h *healthWatch) close() {
	h.stop()
	<-h.done
}

func (h *healthWatch) waitFor(t *testing.T, want string) {
	t.Helper()
	timeout := time.After(60 * time.Second)
	var seen []string
	for {
		select {
		case c := <-h.changes:
			seen = append(seen, c)
			if c == want {
				return
			}
		case <-timeout:
			t.Fatalf("health never changed to %s; changes seen: %v", want, seen)
		}
	}
}

func httpBody(url string) string {
	for i := 0; i < 50; i++ {
		if resp, err := http.Get(url); err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			return string(b)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return ""
}

func appRow(r *report.Report, id string) report.AppStatus {
	for _, a := range r.Apps {
		if a.ID == id {
			return a
		}
	}
	return report.AppStatus{}
}

// TestBrokenUpdateRollsBackAndKeepsServing: an app serving on its loopback port is updated to a spec
// whose server listens elsewhere, so its health check never passes. After the start period and retries
// lockstep brings the previous spec back (same hash label, same env), the port serves again, the
// report says rolled-back, and further passes, also after a restart, do not retry the broken spec; a
// later manifest change to a good spec is applied.
func TestBrokenUpdateRollsBackAndKeepsServing(t *testing.T) {
	f := newFixture(t)
	port := freePort(t)
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	spec := func(version string, listen int) string {
		return fmt.Sprintf(`  container:
    image: %s
    command: [httpd, -f, -p, "%d", -h, /www]
    env: {VERSION: "%s"}
    ports: ["127.0.0.1:%d:8080/tcp"]
    stop_grace_period: 1s
  health: {command: [wget, -q, -O, /dev/null, "http://127.0.0.1:8080/"], interval: 1s, timeout: 2s, retries: 2, start_period: 1s}
`, bbImage, listen, version, port)
	}
	version := func() string {
		t.Helper()
		return f.pm.MustCLI(t, "exec", "it-rb", "sh", "-c", "echo $VERSION")
	}
	hashLabel := func() string {
		t.Helper()
		return f.pm.MustCLI(t, "inspect", "--format", `{{index .Config.Labels "io.lockstep.spec-hash"}}`, "it-rb")
	}

	f.app("it-rb", spec("1", 8080))
	hw := watchHealth(t, f.rec, f)
	r := f.pass()
	noFailures(t, r)
	hw.waitFor(t, "it-rb=healthy")
	r = f.pass()
	noFailures(t, r)
	if len(r.Actions) != 0 || appRow(r, "it-rb").Health != "healthy" {
		t.Fatalf("after install: %s %+v", actions(r), r.Apps)
	}
	goodHash, goodID := hashLabel(), f.id("it-rb")
	if !strings.Contains(httpBody(url), "hello from busybox") {
		t.Fatal("not serving before the update")
	}

	// The broken update: recreated, then unhealthy past start period and retries.
	f.app("it-rb", spec("2", 8081))
	r = f.pass()
	if got := actions(r); got != "it-rb:recreate" {
		t.Fatalf("update: %q %+v", got, r.Failures)
	}
	if version() != "2" {
		t.Fatal("the update was not applied")
	}
	badHash := hashLabel()
	hw.waitFor(t, "it-rb=unhealthy")
	r = f.pass()
	if got := actions(r); got != "it-rb:rollback" {
		t.Fatalf("after the update turned unhealthy: %q %+v", got, r.Failures)
	}
	cause := r.Actions[0].Cause
	if !strings.HasPrefix(cause, "new spec "+badHash[:12]+" not healthy after ") || !strings.Contains(cause, "health check failing (2 in a row); back to "+goodHash[:12]) {
		t.Fatalf("cause %q", cause)
	}
	if row := appRow(r, "it-rb"); row.State != report.StateRolledBack || row.LastAction != "rollback" {
		t.Fatalf("app row %+v", row)
	}
	if len(r.Failures) != 1 || !strings.Contains(r.Failures[0].Error, "spec "+badHash[:12]+" is not applied until the manifest changes") {
		t.Fatalf("failures %+v", r.Failures)
	}
	// The previous spec runs again: its hash label, its env, and the port serves.
	if h := hashLabel(); h != goodHash {
		t.Fatalf("rolled back to hash %s, want %s", h, goodHash)
	}
	if version() != "1" {
		t.Fatal("not the previous spec's env")
	}
	if f.id("it-rb") == goodID {
		t.Fatal("the good container was never replaced: the update did not happen")
	}
	if !strings.Contains(httpBody(url), "hello from busybox") {
		t.Fatal("not serving after the rollback")
	}

	// It turns healthy; further passes do not retry the broken spec.
	hw.waitFor(t, "it-rb=healthy")
	rolledID := f.id("it-rb")
	for i := 0; i < 2; i++ {
		r = f.pass()
		if len(r.Actions) != 0 || appRow(r, "it-rb").State != report.StateRolledBack || appRow(r, "it-rb").Health != "healthy" {
			t.Fatalf("held pass %d: %s %+v", i, actions(r), r.Apps)
		}
	}
	// Nor after a restart of lockstep.
	hw.close()
	f.rec = f.newReconciler(f.client)
	r = f.pass()
	if len(r.Actions) != 0 || appRow(r, "it-rb").State != report.StateRolledBack || f.id("it-rb") != rolledID {
		t.Fatalf("after a restart: %s %+v", actions(r), r.Apps)
	}

	// A manifest change to a good new spec is applied and kept.
	hw = watchHealth(t, f.rec, f)
	f.app("it-rb", spec("3", 8080))
	r = f.pass()
	if got := actions(r); got != "it-rb:recreate" || len(r.Failures) != 0 {
		t.Fatalf("good update: %q %+v", got, r.Failures)
	}
	hw.waitFor(t, "it-rb=healthy")
	r = f.pass()
	noFailures(t, r)
	if len(r.Actions) != 0 || appRow(r, "it-rb").State != report.StateRunning || version() != "3" {
		t.Fatalf("after the good update: %s %+v", actions(r), r.Apps)
	}
	if !strings.Contains(httpBody(url), "hello from busybox") {
		t.Fatal("not serving after the good update")
	}
}

// TestUpdateThatExitsRollsBack: an app without a health check is updated to a command that exits at
// once; the next pass (podman's died event would bring it) brings the previous spec back.
func TestUpdateThatExitsRollsBack(t *testing.T) {
	f := newFixture(t)
	rec, err := reconciler.New(reconciler.Config{AppsDir: f.apps, StateDir: filepath.Join(f.dir, "state"),
		Roots: rootsOf(f), RollbackSettle: time.Second}, f.client)
	if err != nil {
		t.Fatal(err)
	}
	pass := func() *report.Report { return rec.Pass(context.Background(), "test") }
	f.app("it-rbx", worker(bbImage))
	noFailures(t, pass())
	noFailures(t, pass())
	time.Sleep(1100 * time.Millisecond) // the settle window: the worker's spec becomes good
	noFailures(t, pass())
	good := f.pm.MustCLI(t, "inspect", "--format", `{{index .Config.Labels "io.lockstep.spec-hash"}}`, "it-rbx")

	f.app("it-rbx", strings.Replace(worker(bbImage), "while :; do sleep 1; done", "exit 3", 1))
	if r := pass(); actions(r) != "it-rbx:recreate" {
		t.Fatalf("update: %s %+v", actions(r), r.Failures)
	}
	f.pm.MustCLI(t, "wait", "it-rbx")
	r := pass()
	// podman 4.3 calls the exited container exited, podman 5.4 (Debian 13) stopped
	if actions(r) != "it-rbx:rollback" || !(strings.Contains(r.Actions[0].Cause, "container is exited; back to "+good[:12]) ||
		strings.Contains(r.Actions[0].Cause, "container is stopped; back to "+good[:12])) {
		t.Fatalf("after the exit: %s %+v", actions(r), r.Actions)
	}
	if s := f.state("it-rbx"); s != "running" {
		t.Fatalf("state %s", s)
	}
	if h := f.pm.MustCLI(t, "inspect", "--format", `{{index .Config.Labels "io.lockstep.spec-hash"}}`, "it-rbx"); h != good {
		t.Fatalf("hash %s, want %s", h, good)
	}
	time.Sleep(1100 * time.Millisecond) // past the settle window: still held, not retried
	if r := pass(); len(r.Actions) != 0 || appRow(r, "it-rbx").State != report.StateRolledBack {
		t.Fatalf("held: %s %+v", actions(r), r.Apps)
	}
}
