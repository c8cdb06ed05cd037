package reconciler

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/lockstep/lockstep/engine"
	"github.com/lockstep/lockstep/internal/podmantest"
	"github.com/lockstep/lockstep/manifest"
	"github.com/lockstep/lockstep/outcome"
	"github.com/lockstep/lockstep/reconciler/health"
	"github.com/lockstep/lockstep/reconciler/plan"
	"github.com/lockstep/lockstep/report"
	"github.com/lockstep/lockstep/spec"
)

// fakePodman is the one fake podman (internal/podmantest): stateful, recording every call as
// "Op arg", failing those named in Fail.
type fakePodman = podmantest.Podman

func newTestReconciler(t *testing.T, p engine.Podman, apps map[string]string) *Reconciler {
	t.Helper()
	dir := t.TempDir()
	appsDir := filepath.Join(dir, "apps.d")
	os.MkdirAll(appsDir, 0o755)
	for id, extra := range apps {
		y := fmt.Sprintf("app:\n  id: %s\n  name: %s\n  version: '1'\n  container:\n    image: localhost/%s:1\n%s", id, id, id, extra)
		os.WriteFile(filepath.Join(appsDir, id+".yaml"), []byte(y), 0o644)
	}
	r, err := New(Config{AppsDir: appsDir, StateDir: filepath.Join(dir, "state"),
		Roots: testRootsIn(dir), Parallel: 1}, p)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func failures(r *report.Report) map[string]string {
	m := map[string]string{}
	for _, f := range r.Failures {
		key := f.App
		if f.Subject == outcome.SubjectCompanion {
			key = "companion " + f.Name
		}
		m[key] = f.Error
	}
	return m
}

func TestOneFailingAppDoesNotStopThePass(t *testing.T) {
	p := &fakePodman{Images: map[string]bool{"localhost/a:1": true, "localhost/b:1": true, "localhost/c:1": true},
		Fail: map[string]error{"Create b": &engine.APIError{Op: "creating container b", Status: 500, Message: "boom", Err: errors.New("boom")}}}
	r := newTestReconciler(t, p, map[string]string{"a": "", "b": "", "c": ""})
	rep := r.Pass(context.Background(), "test")
	f := failures(rep)
	if len(f) != 1 || !strings.Contains(f["b"], "creating container: creating container b: podman answered 500: boom") {
		t.Fatalf("failures %v", f)
	}
	states := map[string]string{}
	for _, a := range rep.Apps {
		states[a.ID] = a.State
	}
	if diff := cmp.Diff(map[string]string{"a": "running", "b": "failed", "c": "running"}, states); diff != "" {
		t.Fatal(diff)
	}
}

func TestFailedDependencyBlocksDependents(t *testing.T) {
	p := &fakePodman{Images: map[string]bool{"localhost/a:1": true, "localhost/b:1": true},
		Fail: map[string]error{"Start new-a": errors.New("no")}}
	r := newTestReconciler(t, p, map[string]string{"a": "", "b": "  requires: {apps: [a]}\n"})
	f := failures(r.Pass(context.Background(), "test"))
	if !strings.Contains(f["b"], "dependency a failed") {
		t.Fatalf("failures %v", f)
	}
	for _, c := range p.Calls {
		if strings.HasSuffix(c, " b") || strings.HasSuffix(c, "new-b") {
			t.Fatalf("dependent was acted on: %v", p.Calls)
		}
	}
}

func TestRecreateKeepsOldContainerWhenImageFails(t *testing.T) {
	p := &fakePodman{Images: map[string]bool{},
		Fail: map[string]error{"Pull localhost/a:1 tls=true": errors.New("registry down")}}
	p.Containers = []engine.Container{{ID: "old", Name: "a", State: "running", Labels: map[string]string{spec.LabelApp: "a", spec.LabelHashScheme: "v1", spec.LabelSpecHash: "stale"}}}
	r := newTestReconciler(t, p, map[string]string{"a": ""})
	f := failures(r.Pass(context.Background(), "test"))
	if !strings.Contains(f["a"], "pulling image localhost/a:1: registry down") {
		t.Fatalf("failures %v", f)
	}
	for _, c := range p.Calls {
		if strings.HasPrefix(c, "Stop") || strings.HasPrefix(c, "Remove") {
			t.Fatalf("old container touched before the new image was ready: %v", p.Calls)
		}
	}
}

func TestInsecurePullOnlyForAllowListedRegistry(t *testing.T) {
	p := &fakePodman{Images: map[string]bool{}}
	r := newTestReconciler(t, p, map[string]string{
		"a": "  registry: {insecure: [\"127.0.0.1:5000\"]}\n",
	})
	// a's image is localhost/a:1, whose registry (localhost) is not allow-listed.
	r.Pass(context.Background(), "test")
	if !slices.Contains(p.Calls, "Pull localhost/a:1 tls=true") {
		t.Fatalf("calls %v", p.Calls)
	}
}

func TestListFailureFailsEveryAppAndTouchesNothing(t *testing.T) {
	p := &fakePodman{ListErr: &engine.APIError{Op: "listing containers", Err: fmt.Errorf("%w: connection refused", engine.ErrUnavailable)}}
	r := newTestReconciler(t, p, map[string]string{"a": "", "b": ""})
	rep := r.Pass(context.Background(), "test")
	f := failures(rep)
	if len(f) != 2 || !strings.Contains(f["a"], "podman service unavailable") {
		t.Fatalf("failures %v", f)
	}
	if len(p.Calls) != 1 {
		t.Fatalf("calls after a failed list: %v", p.Calls)
	}
}

func TestReportIsSavedAndReadBack(t *testing.T) {
	p := &fakePodman{Images: map[string]bool{"localhost/a:1": true}}
	r := newTestReconciler(t, p, map[string]string{"a": ""})
	rep := r.Pass(context.Background(), "test")
	r2, err := New(r.cfg, p)
	if err != nil {
		t.Fatal(err)
	}
	got := r2.Last()
	if got == nil || got.PassID != rep.PassID || !report.SameContent(got, rep) || !got.FinishedAt.Equal(rep.FinishedAt) {
		t.Fatalf("read back %+v, want %+v", got, rep)
	}
	if next := r2.Pass(context.Background(), "test"); next.PassID != rep.PassID+1 {
		t.Fatalf("pass id after restart %d", next.PassID)
	}
}

func TestDiskPreflight(t *testing.T) {
	p := &fakePodman{Images: map[string]bool{"localhost/a:1": true}}
	r := newTestReconciler(t, p, map[string]string{"a": "  requires: {disk_gb: 2}\n"})
	r.cfg.FreeBytes = func(string) (uint64, error) { return 64 << 20, nil } // 64 MiB: "0.1 GB" until issue 16
	f := failures(r.Pass(context.Background(), "test"))
	if !strings.HasPrefix(f["a"], filepath.Join(r.cfg.AppsDir, "a.yaml")+": app.requires.disk_gb: needs 2 GB free at ") || !strings.HasSuffix(f["a"], ", which has 0.067108864 GB free") {
		t.Fatalf("failures %v", f)
	}
	if slices.Contains(p.Calls, "Create a") {
		t.Fatal("created despite failed preflight")
	}
}

func TestExactGB(t *testing.T) {
	for b, want := range map[uint64]string{0: "0", 1: "0.000000001", 44 << 20: "0.046137344", 64 << 20: "0.067108864", 1e9: "1", 700e9 + 5e8: "700.5", 12345678901234: "12345.678901234"} {
		if got := ExactGB(b); got != want {
			t.Errorf("ExactGB(%d) = %q, want %q", b, got, want)
		}
	}
}

func TestRestartBackoff(t *testing.T) {
	p := &fakePodman{Images: map[string]bool{"localhost/a:1": true}}
	r := newTestReconciler(t, p, map[string]string{"a": ""})
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	r.cfg.Now = func() time.Time { return now }
	p.Containers = []engine.Container{{ID: "c1", Name: "a", State: "exited", Labels: spec.DesiredFor(mustLoad(t, r, "a"), r.cfg.Roots).Request.Labels}}
	pass := func() *report.Report { return r.Pass(context.Background(), "test") }
	starts := func() int {
		n := 0
		for _, c := range p.Calls {
			if c == "Start c1" {
				n++
			}
		}
		return n
	}
	// The first restart is immediate.
	if rep := pass(); starts() != 1 || len(rep.Failures) != 0 {
		t.Fatalf("first restart: %d starts, %+v", starts(), rep.Failures)
	}
	// Dead again a second later: held back for 10 s, shown in the report with the next attempt.
	p.Kill("c1")
	now = now.Add(time.Second)
	rep := pass()
	if starts() != 1 || rep.Apps[0].NextAttempt != "2026-01-01T00:00:10Z" || len(rep.Failures) != 1 || !strings.Contains(rep.Failures[0].Error, "restart backoff after 1 restarts") {
		t.Fatalf("backoff: %d starts, %+v %+v", starts(), rep.Apps, rep.Failures)
	}
	if w := r.NextWake(); !w.Equal(time.Date(2026, 1, 1, 0, 0, 10, 0, time.UTC)) {
		t.Fatalf("next wake %s", w)
	}
	// Due: restarted; then 20 s, 40 s ... up to 5 min.
	want := []time.Duration{10 * time.Second, 20 * time.Second, 40 * time.Second}
	for i, d := range want {
		now = now.Add(d)
		pass()
		if starts() != i+2 {
			t.Fatalf("after %s: %d starts", d, starts())
		}
		p.Kill("c1")
		if pass(); starts() != i+2 { // dead again at once: held back
			t.Fatalf("dead again after %s: %d starts", d, starts())
		}
	}
	if backoffDelay(20) != plan.BackoffMax {
		t.Fatal("backoff not capped at 5 min")
	}
	// Up for 10 minutes: the history is forgotten, the next death restarts at once.
	now = now.Add(plan.BackoffMax)
	pass() // the held-back restart
	if c, _ := p.Container("c1"); c.State != "running" || starts() != 5 {
		t.Fatalf("before the reset: %s, %d starts", c.State, starts())
	}
	now = now.Add(plan.BackoffReset)
	pass()
	p.Kill("c1")
	now = now.Add(time.Second)
	pass()
	if starts() != 6 {
		t.Fatalf("after a reset: %d starts", starts())
	}
}

func mustLoad(t *testing.T, r *Reconciler, id string) *manifest.Loaded {
	t.Helper()
	set, err := r.LoadManifests()
	if err != nil || set.ByID(id) == nil {
		t.Fatalf("loading %s: %v", id, err)
	}
	return set.ByID(id)
}

// After a dependency's repair its running dependents wait until it is ready again, then restart
// once, outside their backoff; their own dependents follow the same way (issue 16 point 1).
func TestDependentsRestartAfterTheirDependency(t *testing.T) {
	p := &fakePodman{Images: map[string]bool{"localhost/a:1": true, "localhost/b:1": true, "localhost/c:1": true, "localhost/d:1": true}}
	r := newTestReconciler(t, p, map[string]string{"a": "", "b": "  requires: {apps: [a]}\n", "c": "  requires: {apps: [b]}\n", "d": ""})
	set, _ := r.LoadManifests()
	mk := func(id, state string) engine.Container {
		d := spec.DesiredsFor(set.ByID(id), &spec.Wiring{Roots: r.cfg.Roots, Set: set})[0]
		return engine.Container{ID: "c-" + id, Name: id, State: state, Labels: d.Request.Labels}
	}
	causes := func(rep *report.Report) string {
		var out []string
		for _, a := range rep.Actions {
			out = append(out, a.App+":"+a.Action+":"+a.Cause)
		}
		return fmt.Sprint(out)
	}
	// a died; b (needs a) and c (needs b) still run; d is unrelated. Only a is started; b waits.
	p.Containers = []engine.Container{mk("a", "exited"), mk("b", "running"), mk("c", "running"), mk("d", "running")}
	rep := r.Pass(context.Background(), "test")
	if got := fmt.Sprint(p.Calls[1:]); got != "[Start c-a]" {
		t.Fatalf("calls %s", got)
	}
	if f := failures(rep)["b"]; f != "dependency a was restarted; waiting for a to be healthy before restarting this app" || appState(rep, "b").State != report.StateRunning {
		t.Fatalf("b: %q %+v", f, rep.Apps)
	}
	if w := r.NextWake(); w.IsZero() || w.Sub(r.cfg.Now()) > plan.DepRecheck {
		t.Fatalf("no recheck for a dependency without a health check: %v", w)
	}
	// a runs again (no health check, no ports: ready): b restarts once, not as a repair; c waits for b.
	p.Containers[0].State = "running"
	p.Calls = nil
	rep = r.Pass(context.Background(), "test")
	if got := fmt.Sprint(p.Calls[1:]); got != "[Stop c-b Start c-b]" || causes(rep) != "[b:restart:dependency a was restarted and is healthy again]" {
		t.Fatalf("calls %s, actions %s", got, causes(rep))
	}
	if !strings.Contains(failures(rep)["c"], "waiting for b to be healthy") {
		t.Fatalf("failures %+v", rep.Failures)
	}
	p.Calls = nil
	rep = r.Pass(context.Background(), "test")
	if got := fmt.Sprint(p.Calls[1:]); got != "[Stop c-c Start c-c]" || len(rep.Failures) != 0 {
		t.Fatalf("calls %s, failures %+v", got, rep.Failures)
	}
	if r.backoff["b"] != nil || r.backoff["c"] != nil || r.backoff["a"] == nil {
		t.Fatalf("backoff book %v: the restarts after a dependency count, or a's repair does not", r.backoff)
	}
	// No-op after that.
	p.Calls = nil
	if rep = r.Pass(context.Background(), "test"); len(p.Calls) != 1 || len(rep.Failures) != 0 {
		t.Fatalf("calls %v, failures %+v", p.Calls, rep.Failures)
	}
	// When the dependency's repair fails, dependents are left alone.
	p.Containers[0].State = "exited"
	p.Calls = nil
	p.Fail = map[string]error{"Start c-a": errors.New("no")}
	r.backoff = map[string]*plan.Backoff{}
	r.Pass(context.Background(), "test")
	for _, c := range p.Calls {
		if strings.HasSuffix(c, "c-b") || strings.HasSuffix(c, "c-c") {
			t.Fatalf("dependent touched after a failed repair: %v", p.Calls)
		}
	}
}

func TestDependentWaitsForHealthyDependency(t *testing.T) {
	p := &fakePodman{Images: map[string]bool{"localhost/db:1": true, "localhost/api:1": true}}
	r := newTestReconciler(t, p, map[string]string{
		"db":  "  health: {command: [check]}\n",
		"api": "  requires: {apps: [db]}\n",
	})
	rep := r.Pass(context.Background(), "test")
	// db is installed; api waits: db's health is not known yet.
	if got := fmt.Sprint(p.Calls[1:]); got != "[ImageExists localhost/db:1 Create db Start new-db]" {
		t.Fatalf("calls %s", got)
	}
	var waiting string
	for _, a := range rep.Apps {
		if a.ID == "api" {
			waiting = a.State
		}
	}
	if waiting != report.StateMissing || len(rep.Failures) != 1 || !strings.Contains(rep.Failures[0].Error, "waiting for dependency db to be healthy (not checked yet)") {
		t.Fatalf("api state %q, failures %+v", waiting, rep.Failures)
	}
	// db turns healthy (the monitor's doing): the next pass installs api.
	r.health.Put("db", health.Result{Status: report.HealthHealthy})
	set, _ := r.LoadManifests()
	p.Containers = []engine.Container{{ID: "new-db", Name: "db", State: "running", Labels: spec.DesiredFor(set.ByID("db"), r.cfg.Roots).Request.Labels}}
	p.Calls = nil
	r.Pass(context.Background(), "test")
	if !slices.Contains(p.Calls, "Create api") {
		t.Fatalf("api not installed once db was healthy: %v", p.Calls)
	}
}

type fakeHost struct{ got []string }

func (h *fakeHost) Problems(_ context.Context, desired []*spec.Desired, _ string) []report.HostProblem {
	h.got = nil
	for _, d := range desired {
		h.got = append(h.got, d.App.ID)
	}
	return []report.HostProblem{{Code: "rootless-no-newuidmap", Message: "m", Fix: "install uidmap", Apps: h.got}}
}

// A pass whose podman does not answer still asks the host checker, with every installed app: the
// reason podman does not answer may be the host's (rootless podman without newuidmap).
func TestListFailureStillChecksTheHost(t *testing.T) {
	p := &fakePodman{ListErr: &engine.APIError{Op: "listing containers", Err: fmt.Errorf("%w: connection refused", engine.ErrUnavailable)}}
	r := newTestReconciler(t, p, map[string]string{"a": "", "b": ""})
	h := &fakeHost{}
	r.cfg.Host = h
	rep := r.Pass(context.Background(), "test")
	if !slices.Equal(h.got, []string{"a", "b"}) || len(rep.HostProblems) != 1 {
		t.Fatalf("checker got %v; report's problems %+v", h.got, rep.HostProblems)
	}
	n := 0
	for _, f := range rep.Failures {
		if strings.HasPrefix(f.Error, "host: m; fix: install uidmap") {
			n++
		}
	}
	if n != 2 {
		t.Errorf("host failures: %d, want one per app: %+v", n, rep.Failures)
	}
}
