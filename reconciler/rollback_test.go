package reconciler

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/lockstep/lockstep/engine"
	"github.com/lockstep/lockstep/reconciler/health"
	"github.com/lockstep/lockstep/reconciler/plan"
	"github.com/lockstep/lockstep/reconciler/rollback"
	"github.com/lockstep/lockstep/report"
	"github.com/lockstep/lockstep/spec"
	lsspec "github.com/lockstep/lockstep/spec"
)

// createRecorder is the fake podman that also keeps the requests it was asked to create.
type createRecorder struct {
	*fakePodman
	mu       sync.Mutex
	requests []spec.CreateRequest
}

func (c *createRecorder) Create(ctx context.Context, req spec.CreateRequest) (string, error) {
	c.mu.Lock()
	c.requests = append(c.requests, req)
	c.mu.Unlock()
	return c.fakePodman.Create(ctx, req)
}

// rbEnv drives passes of one app "a" on a fake clock.
type rbEnv struct {
	t   *testing.T
	p   *createRecorder
	r   *Reconciler
	now time.Time
}

const rbHealth = "  health: {command: [check], interval: 1s, timeout: 1s, retries: 2, start_period: 2s}\n"

func newRBEnv(t *testing.T, extra string) *rbEnv {
	p := &createRecorder{fakePodman: &fakePodman{Images: map[string]bool{"localhost/a:1": true, "localhost/a:2": true, "localhost/a:3": true}}}
	e := &rbEnv{t: t, p: p, now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	e.r = newTestReconciler(t, p, map[string]string{"a": extra})
	e.r.cfg.Now = func() time.Time { return e.now }
	e.r.cfg.RollbackSettle = 10 * time.Second
	return e
}

// manifest rewrites a's manifest with the given image tag and extra YAML (a new mtime and size).
func (e *rbEnv) manifest(tag, extra string) {
	e.t.Helper()
	y := fmt.Sprintf("app:\n  id: a\n  name: a\n  version: '%s'\n  container:\n    image: localhost/a:%s\n%s", tag, tag, extra)
	f := filepath.Join(e.r.cfg.AppsDir, "a.yaml")
	if err := os.WriteFile(f, []byte(y), 0o644); err != nil {
		e.t.Fatal(err)
	}
	later := time.Now().Add(time.Duration(len(tag)+len(extra)) * time.Second)
	os.Chtimes(f, later, later)
}

func (e *rbEnv) desired() *spec.Desired {
	e.t.Helper()
	return spec.DesiredFor(mustLoad(e.t, e.r, "a"), e.r.cfg.Roots)
}

// running makes podman list a's container as the current manifest's, in the given state.
func (e *rbEnv) container(id, state string, d *spec.Desired) {
	e.p.mu.Lock()
	e.p.Containers = []engine.Container{{ID: id, Name: "a", State: state, Image: d.Request.Image, Labels: d.Request.Labels}}
	e.p.mu.Unlock()
}

func (e *rbEnv) health(status string, streak int) {
	e.r.health.Put("a", health.Result{Status: status, Streak: streak, LastRun: e.now})
}

func (e *rbEnv) pass() *report.Report {
	e.t.Helper()
	e.p.mu.Lock()
	e.p.Calls = nil
	e.p.mu.Unlock()
	return e.r.Pass(context.Background(), "test")
}

func (e *rbEnv) creates() []spec.CreateRequest {
	e.p.mu.Lock()
	defer e.p.mu.Unlock()
	out := e.p.requests
	e.p.requests = nil
	return out
}

func appState(rep *report.Report, id string) report.AppStatus {
	for _, a := range rep.Apps {
		if a.ID == id {
			return a
		}
	}
	return report.AppStatus{}
}

func actionList(rep *report.Report) string {
	var s []string
	for _, a := range rep.Actions {
		s = append(s, a.App+":"+a.Action)
	}
	return strings.Join(s, " ")
}

// installGood installs a from the current manifest and makes its spec known-good.
func (e *rbEnv) installGood(health bool) *spec.Desired {
	e.t.Helper()
	if rep := e.pass(); actionList(rep) != "a:install" {
		e.t.Fatalf("install: %s %+v", actionList(rep), rep.Failures)
	}
	good := e.desired()
	e.container("new-a", "running", good)
	if health {
		e.health(report.HealthHealthy, 0)
	} else {
		e.pass()
		e.now = e.now.Add(11 * time.Second)
	}
	if rep := e.pass(); len(rep.Actions) != 0 || len(rep.Failures) != 0 {
		e.t.Fatalf("steady pass: %+v %+v", rep.Actions, rep.Failures)
	}
	if rec := e.r.rb.Apps["a"]; rec == nil || rec.Good == nil || rec.Good.Hash != good.Hash() {
		e.t.Fatalf("good spec not recorded: %+v", rec)
	}
	e.creates()
	return good
}

func TestRollbackWhenUpdateTurnsUnhealthy(t *testing.T) {
	e := newRBEnv(t, rbHealth)
	good := e.installGood(true)
	fi, err := os.Stat(filepath.Join(e.r.cfg.StateDir, rollback.File))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("rollback file: %v %v", fi, err)
	}

	// The update: recreated, on trial; lockstepd is asked to wake at the trial's deadline.
	e.manifest("2", rbHealth)
	bad := e.desired()
	started := e.now
	if rep := e.pass(); actionList(rep) != "a:recreate" {
		t.Fatalf("update: %s", actionList(rep))
	}
	if w := e.r.NextWake(); !w.Equal(started.Add(2*time.Second + 3*2*time.Second)) {
		t.Fatalf("next wake %s, want the trial deadline", w)
	}
	if c := e.creates(); len(c) != 1 || c[0].Labels[spec.LabelSpecHash] != bad.Hash() {
		t.Fatalf("creates %+v", c)
	}
	// Starting: still on trial, nothing done.
	e.container("new-a", "running", bad)
	e.health(report.HealthStarting, 0)
	e.now = e.now.Add(3 * time.Second)
	if rep := e.pass(); len(rep.Actions) != 0 {
		t.Fatalf("during the trial: %s", actionList(rep))
	}
	// Unhealthy past its retries: rolled back to the good spec, labels and all.
	e.health(report.HealthUnhealthy, 2)
	e.now = e.now.Add(2 * time.Second)
	rep := e.pass()
	if actionList(rep) != "a:rollback" {
		t.Fatalf("actions %s %+v", actionList(rep), rep.Failures)
	}
	want := fmt.Sprintf("new spec %s not healthy after 5s: health check failing (2 in a row); back to %s", bad.Hash()[:12], good.Hash()[:12])
	if rep.Actions[0].Cause != want {
		t.Fatalf("cause %q\nwant  %q", rep.Actions[0].Cause, want)
	}
	c := e.creates()
	if len(c) != 1 || c[0].Image != "localhost/a:1" || c[0].Labels[spec.LabelSpecHash] != good.Hash() || c[0].Labels[spec.LabelHashScheme] != spec.HashScheme {
		t.Fatalf("rollback created %+v", c)
	}
	if !slices.Contains(e.p.Calls, "Remove new-a") {
		t.Fatalf("the failed container was not removed: %v", e.p.Calls)
	}
	st := appState(rep, "a")
	if st.State != report.StateRolledBack || st.LastAction != "rollback" || st.Image != "localhost/a:1" {
		t.Fatalf("app %+v", st)
	}
	if f := failures(rep)["a"]; !strings.Contains(f, "spec "+bad.Hash()[:12]+" is not applied until the manifest changes") {
		t.Fatalf("failures %+v", rep.Failures)
	}

	// Further passes hold it: no retry of the failed spec, the good container left alone.
	e.container("new-a", "running", good)
	e.health(report.HealthHealthy, 0)
	for i := 0; i < 2; i++ {
		e.now = e.now.Add(time.Minute)
		rep = e.pass()
		if len(rep.Actions) != 0 || len(e.creates()) != 0 || appState(rep, "a").State != report.StateRolledBack || len(rep.Failures) != 1 {
			t.Fatalf("held pass %d: %s %+v %+v", i, actionList(rep), rep.Apps, rep.Failures)
		}
	}
	// Across a restart of lockstepd too.
	r2, err := New(e.r.cfg, e.p)
	if err != nil {
		t.Fatal(err)
	}
	e.r = r2
	rep = e.pass()
	if len(rep.Actions) != 0 || appState(rep, "a").State != report.StateRolledBack {
		t.Fatalf("after a restart: %s %+v", actionList(rep), rep.Apps)
	}
	// The dry run says so.
	obs, err := e.r.Observe(context.Background())
	if err != nil || obs.Actions[0].Kind != plan.KindNone || !strings.Contains(obs.Actions[0].Cause, "rolled back") {
		t.Fatalf("plan %+v %v", obs.Actions, err)
	}
	// A dead good container is started, not replaced by the failed spec.
	e.container("new-a", "exited", good)
	rep = e.pass()
	if actionList(rep) != "a:start" || len(e.creates()) != 0 {
		t.Fatalf("dead while held: %s", actionList(rep))
	}

	// A manifest change to another spec is a new attempt.
	e.container("new-a", "running", good)
	e.manifest("3", rbHealth)
	rep = e.pass()
	if actionList(rep) != "a:recreate" || len(rep.Failures) != 0 {
		t.Fatalf("new spec: %s %+v", actionList(rep), rep.Failures)
	}
	if c := e.creates(); len(c) != 1 || c[0].Image != "localhost/a:3" {
		t.Fatalf("creates %+v", c)
	}
	// It turns healthy: kept, and it is the new good spec.
	e.container("new-a", "running", e.desired())
	e.health(report.HealthHealthy, 0)
	e.now = e.now.Add(3 * time.Second)
	if rep = e.pass(); len(rep.Actions) != 0 || len(rep.Failures) != 0 || appState(rep, "a").State != report.StateRunning {
		t.Fatalf("healthy update: %s %+v %+v", actionList(rep), rep.Apps, rep.Failures)
	}
	if rec := e.r.rb.Apps["a"]; rec.Good.Hash != e.desired().Hash() || rec.Trial != nil || rec.Failed != nil {
		t.Fatalf("record %+v", rec)
	}
	// Unhealthy later is an ordinary restart, not a rollback.
	e.health(report.HealthUnhealthy, 3)
	if rep = e.pass(); actionList(rep) != "a:restart" {
		t.Fatalf("unhealthy after the update was kept: %s", actionList(rep))
	}
}

func TestRollbackRevertToGoodSpecIsNoop(t *testing.T) {
	e := newRBEnv(t, rbHealth)
	good := e.installGood(true)
	e.manifest("2", rbHealth)
	e.pass()
	e.container("new-a", "running", e.desired())
	e.health(report.HealthUnhealthy, 2)
	e.now = e.now.Add(5 * time.Second)
	if rep := e.pass(); actionList(rep) != "a:rollback" {
		t.Fatalf("actions %s", actionList(rep))
	}
	e.container("new-a", "running", good)
	e.health(report.HealthHealthy, 0)
	// The operator puts the good spec back: nothing to do, and no longer rolled back.
	e.manifest("1", rbHealth)
	rep := e.pass()
	if len(rep.Actions) != 0 || len(rep.Failures) != 0 || appState(rep, "a").State != report.StateRunning {
		t.Fatalf("revert: %s %+v %+v", actionList(rep), rep.Apps, rep.Failures)
	}
	if rec := e.r.rb.Apps["a"]; rec.Failed != nil {
		t.Fatalf("failed spec kept after the manifest changed: %+v", rec.Failed)
	}
	// Going back to the failed spec is a manifest change too: a new attempt.
	e.manifest("2", rbHealth)
	if rep := e.pass(); actionList(rep) != "a:recreate" {
		t.Fatalf("retry after a change: %s", actionList(rep))
	}
}

func TestRollbackAtDeadlineWhenNeverHealthy(t *testing.T) {
	e := newRBEnv(t, rbHealth)
	e.installGood(true)
	e.manifest("2", rbHealth)
	start := e.now
	e.pass()
	e.container("new-a", "running", e.desired())
	// The checks never complete (podman keeps answering with errors): health stays unknown.
	e.now = start.Add(7 * time.Second)
	if rep := e.pass(); len(rep.Actions) != 0 {
		t.Fatalf("before the deadline: %s", actionList(rep))
	}
	e.now = e.r.NextWake()
	if !e.now.Equal(start.Add(8 * time.Second)) {
		t.Fatalf("wake %s", e.now)
	}
	rep := e.pass()
	if actionList(rep) != "a:rollback" || !strings.Contains(rep.Actions[0].Cause, "not healthy after 8s: health still unknown after the start period and retries") {
		t.Fatalf("at the deadline: %+v", rep.Actions)
	}
}

func TestRollbackWhenUpdatedContainerExits(t *testing.T) {
	e := newRBEnv(t, "")
	good := e.installGood(false)
	e.manifest("2", "    command: [crash]\n")
	start := e.now
	e.pass()
	e.creates()
	if w := e.r.NextWake(); !w.Equal(start.Add(10 * time.Second)) {
		t.Fatalf("wake %s, want the end of the settle window", w)
	}
	e.container("new-a", "exited", e.desired())
	e.now = e.now.Add(2 * time.Second)
	rep := e.pass()
	if actionList(rep) != "a:rollback" || !strings.HasSuffix(rep.Actions[0].Cause, "not healthy after 2s: container is exited; back to "+good.Hash()[:12]) {
		t.Fatalf("%+v", rep.Actions)
	}
	if c := e.creates(); len(c) != 1 || len(c[0].Command) != 0 {
		t.Fatalf("rollback created %+v", c)
	}
}

func TestUpdateKeptAfterSettleWithoutHealthCheck(t *testing.T) {
	e := newRBEnv(t, "")
	e.installGood(false)
	e.manifest("2", "    command: [serve]\n")
	e.pass()
	e.container("new-a", "running", e.desired())
	e.now = e.now.Add(10 * time.Second)
	if rep := e.pass(); len(rep.Actions) != 0 || len(rep.Failures) != 0 {
		t.Fatalf("%s %+v", actionList(rep), rep.Failures)
	}
	if rec := e.r.rb.Apps["a"]; rec.Good.Hash != e.desired().Hash() {
		t.Fatalf("not kept as good: %+v", rec)
	}
	// A crash after that is repaired in place.
	e.container("new-a", "exited", e.desired())
	if rep := e.pass(); actionList(rep) != "a:start" {
		t.Fatalf("%s", actionList(rep))
	}
}

func TestRollbackWhenUpdatedContainerDoesNotStart(t *testing.T) {
	e := newRBEnv(t, rbHealth)
	e.installGood(true)
	e.manifest("2", rbHealth)
	e.p.Fail = map[string]error{"Start new-a": errors.New("executable file `crash` not found")}
	start := e.now
	rep := e.pass()
	if actionList(rep) != "a:recreate" || len(rep.Failures) != 1 {
		t.Fatalf("%s %+v", actionList(rep), rep.Failures)
	}
	if w := e.r.NextWake(); !w.Equal(start) {
		t.Fatalf("wake %s: a failed start should be judged at once", w)
	}
	e.p.Fail = nil
	e.container("new-a", "created", e.desired())
	rep = e.pass()
	if actionList(rep) != "a:rollback" || !strings.Contains(rep.Actions[0].Cause, "container is created (starting: executable file `crash` not found)") {
		t.Fatalf("%+v", rep.Actions)
	}
}

func TestNoRollbackWhenImageIsMissing(t *testing.T) {
	e := newRBEnv(t, rbHealth)
	e.installGood(true)
	e.manifest("9", rbHealth) // localhost/a:9 exists nowhere
	e.p.Fail = map[string]error{"Pull localhost/a:9 tls=true": errors.New("no such image")}
	for i := 0; i < 2; i++ {
		rep := e.pass()
		if actionList(rep) != "a:recreate" || !strings.Contains(failures(rep)["a"], "no such image") {
			t.Fatalf("pass %d: %s %+v", i, actionList(rep), rep.Failures)
		}
	}
	if !e.r.NextWake().IsZero() {
		t.Fatalf("wake %s for an update that never replaced the container", e.r.NextWake())
	}
	for _, c := range e.creates() {
		if c.Image == "localhost/a:1" {
			t.Fatal("rolled back although the good container was never replaced")
		}
	}
	// The pull works again: the update goes ahead.
	e.p.Fail = nil
	e.p.Images["localhost/a:9"] = true
	if rep := e.pass(); actionList(rep) != "a:recreate" || len(rep.Failures) != 0 {
		t.Fatalf("%s %+v", actionList(rep), rep.Failures)
	}
}

// TestRollbackWhenCreateFailsAfterRemoval: the recreate removed the good container and could not
// create the new one; the next pass finds nothing and brings the good spec back.
func TestRollbackWhenCreateFailsAfterRemoval(t *testing.T) {
	e := newRBEnv(t, rbHealth)
	good := e.installGood(true)
	e.manifest("2", rbHealth)
	e.p.Fail = map[string]error{"Create a": errors.New("invalid spec")}
	e.pass()
	e.creates()
	e.p.Fail = nil
	e.p.Containers = nil
	rep := e.pass()
	if actionList(rep) != "a:rollback" || !strings.Contains(rep.Actions[0].Cause, "no container (creating container: invalid spec)") {
		t.Fatalf("%s %+v", actionList(rep), rep.Actions)
	}
	if c := e.creates(); len(c) != 1 || c[0].Labels[spec.LabelSpecHash] != good.Hash() {
		t.Fatalf("creates %+v", c)
	}
}

func TestNoopPassesWriteNoRollbackFile(t *testing.T) {
	e := newRBEnv(t, rbHealth)
	e.installGood(true)
	path := filepath.Join(e.r.cfg.StateDir, rollback.File)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	writes := e.r.rb.Writes
	for i := 0; i < 3; i++ {
		e.now = e.now.Add(time.Minute)
		if rep := e.pass(); len(rep.Actions) != 0 {
			t.Fatalf("%s", actionList(rep))
		}
	}
	fi2, _ := os.Stat(path)
	if e.r.rb.Writes != writes || fi.Sys().(*syscall.Stat_t).Ino != fi2.Sys().(*syscall.Stat_t).Ino || !fi.ModTime().Equal(fi2.ModTime()) {
		t.Fatalf("no-op passes wrote the rollback file (%d writes)", e.r.rb.Writes-writes)
	}
	// Uninstalling forgets the app's records.
	os.Remove(filepath.Join(e.r.cfg.AppsDir, "a.yaml"))
	e.pass()
	if _, ok := e.r.rb.Apps["a"]; ok {
		t.Fatal("records of an uninstalled app kept")
	}
}

// TestTrialSurvivesRestart: lockstepd restarts while an update is on trial. The trial goes on; its
// health is judged afresh (a deadline that passed while lockstepd was down is no verdict).
func TestTrialSurvivesRestart(t *testing.T) {
	// Env, a port (answering: a listener stands in for the container) and a volume: the saved request
	// must come back whole.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	manifestSpec := fmt.Sprintf("    env: {SECRET: s3cret}\n    ports: ['127.0.0.1:%d:80/tcp']\n    volumes: ['${APP_DATA}/d:/d:ro']\n", l.Addr().(*net.TCPAddr).Port) + rbHealth
	e := newRBEnv(t, manifestSpec)
	good := e.installGood(true)
	e.manifest("2", manifestSpec)
	e.pass()
	e.creates()
	bad := e.desired()
	e.container("new-a", "running", bad)
	r2, err := New(e.r.cfg, e.p)
	if err != nil {
		t.Fatal(err)
	}
	e.r = r2
	e.now = e.now.Add(time.Hour)
	if rep := e.pass(); len(rep.Actions) != 0 {
		t.Fatalf("first pass after the restart: %s", actionList(rep))
	}
	if rec := e.r.rb.Apps["a"]; rec == nil || rec.Trial == nil || rec.Trial.Hash != bad.Hash() {
		t.Fatalf("trial lost in the restart: %+v", rec)
	}
	// The deadline counts from this process's first look: 8 s later, still no verdict, it rolls back.
	if w := e.r.NextWake(); !w.Equal(e.now.Add(8 * time.Second)) {
		t.Fatalf("wake %s", w)
	}
	e.now = e.now.Add(8 * time.Second)
	rep := e.pass()
	if actionList(rep) != "a:rollback" || !strings.Contains(rep.Actions[0].Cause, "health still unknown") {
		t.Fatalf("%s %+v", actionList(rep), rep.Actions)
	}
	c := e.creates()
	if len(c) != 1 || c[0].Labels[spec.LabelSpecHash] != good.Hash() || lsspec.HashV1(&c[0]) != good.Hash() || c[0].Env["SECRET"] != "s3cret" {
		t.Fatalf("creates %+v", c)
	}
}

// TestRollbackWhenUpdateDoesNotAnswer: without a health check, an updated app that keeps running but
// whose published port stays silent past the settle window and the reachability grace is rolled back.
func TestRollbackWhenUpdateDoesNotAnswer(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ports := fmt.Sprintf("    ports: ['127.0.0.1:%d:80/tcp']\n", l.Addr().(*net.TCPAddr).Port)
	e := newRBEnv(t, ports)
	good := e.installGood(false)
	e.manifest("2", ports)
	start := e.now
	e.pass()
	e.container("new-a", "running", e.desired())
	l.Close() // the new container does not serve
	e.now = start.Add(10 * time.Second)
	if rep := e.pass(); len(rep.Actions) != 0 {
		t.Fatalf("within the reachability grace: %s", actionList(rep))
	}
	// The trial's deadline (the end of the reachability grace), or the silent port's re-probe before it.
	if w := e.r.NextWake(); !w.After(e.now) || w.After(start.Add(ReachGrace)) {
		t.Fatalf("wake %s, want by the end of the reachability grace", w)
	}
	e.now = start.Add(ReachGrace)
	rep := e.pass()
	if actionList(rep) != "a:rollback" || !strings.Contains(rep.Actions[0].Cause, "not healthy after 20s: "+l.Addr().String()+" does not answer; back to "+good.Hash()[:12]) {
		t.Fatalf("%s %+v", actionList(rep), rep.Actions)
	}
}

// TestStackContainerRollsBackAlone: in a stack, the container whose update fails is rolled back; the
// others are left as they are; the app's row and the container's say rolled-back.
func TestStackContainerRollsBackAlone(t *testing.T) {
	p := &createRecorder{fakePodman: &fakePodman{Images: map[string]bool{"localhost/db:1": true, "localhost/web:1": true, "localhost/web:2": true}}}
	r := newTestReconciler(t, p, nil)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	r.cfg.Now = func() time.Time { return now }
	write := func(webTag string) {
		y := "app:\n  id: s\n  name: s\n  version: '1'\n  containers:\n    - name: db\n      image: localhost/db:1\n" +
			"    - name: web\n      image: localhost/web:" + webTag + "\n      health: {command: [check], interval: 1s, timeout: 1s, retries: 2}\n"
		f := filepath.Join(r.cfg.AppsDir, "s.yaml")
		if err := os.WriteFile(f, []byte(y), 0o644); err != nil {
			t.Fatal(err)
		}
		later := time.Now().Add(time.Duration(len(webTag)) * time.Hour)
		os.Chtimes(f, later, later)
	}
	list := func() {
		set, _ := r.LoadManifests()
		var cs []engine.Container
		for _, d := range spec.DesiredsFor(set.ByID("s"), &spec.Wiring{Roots: r.cfg.Roots, Set: set}) {
			cs = append(cs, engine.Container{ID: "new-" + d.Name(), Name: d.Name(), State: "running", Labels: d.Request.Labels})
		}
		p.mu.Lock()
		p.Containers = cs
		p.mu.Unlock()
	}
	setHealth := func(status string, streak int) {
		r.health.Put("s-web", health.Result{Status: status, Streak: streak})
	}
	write("1")
	if rep := r.Pass(context.Background(), "test"); actionList(rep) != "s:install s:install" {
		t.Fatalf("install: %s %+v", actionList(rep), rep.Failures)
	}
	list()
	setHealth(report.HealthHealthy, 0)
	r.Pass(context.Background(), "test")
	goodWeb := r.rb.Apps["s-web"]
	if goodWeb == nil || goodWeb.Good == nil || goodWeb.App != "s" {
		t.Fatalf("web's good spec not recorded: %+v", goodWeb)
	}
	write("2")
	if rep := r.Pass(context.Background(), "test"); actionList(rep) != "s:recreate" {
		t.Fatalf("update: %s %+v", actionList(rep), rep.Failures)
	}
	list()
	setHealth(report.HealthUnhealthy, 2)
	p.requests = nil
	rep := r.Pass(context.Background(), "test")
	if actionList(rep) != "s:rollback" || !strings.HasPrefix(rep.Actions[0].Cause, "web: new spec ") {
		t.Fatalf("%s %+v", actionList(rep), rep.Actions)
	}
	if len(p.requests) != 1 || p.requests[0].Name != "s-web" || p.requests[0].Image != "localhost/web:1" || p.requests[0].Labels[spec.LabelContainer] != "web" {
		t.Fatalf("creates %+v", p.requests)
	}
	row := appState(rep, "s")
	states := map[string]string{}
	for _, c := range row.Containers {
		states[c.Name] = c.State
	}
	if row.State != report.StateRolledBack || states["web"] != report.StateRolledBack || states["db"] != report.StateRunning {
		t.Fatalf("row %+v", row)
	}
	if f := failures(rep)["s"]; !strings.HasPrefix(f, "web: the manifest's spec ") {
		t.Fatalf("failures %+v", rep.Failures)
	}
}
