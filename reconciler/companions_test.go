package reconciler

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/lockstep/lockstep/engine"
	"github.com/lockstep/lockstep/manifest"
	"github.com/lockstep/lockstep/outcome"
	"github.com/lockstep/lockstep/quadlet"
	"github.com/lockstep/lockstep/report"
	"github.com/lockstep/lockstep/spec"
	"github.com/lockstep/lockstep/systemd"
)

// fakeSystemd models units as files in dir: a unit loads when its file exists and has no "BROKEN".
type fakeSystemd struct {
	mu      sync.Mutex
	dir     string
	suffix  string
	active  map[string]string
	calls   []string
	reloads int
	loaded  map[string]bool
}

func (f *fakeSystemd) Reload(ctx context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reloads++
	f.calls = append(f.calls, "reload")
	f.loaded = map[string]bool{}
	entries, _ := os.ReadDir(f.dir)
	for _, e := range entries {
		b, _ := os.ReadFile(filepath.Join(f.dir, e.Name()))
		if !strings.Contains(string(b), "BROKEN") {
			f.loaded[strings.TrimSuffix(e.Name(), f.suffix)+".service"] = true
		}
	}
	return nil
}
func (f *fakeSystemd) op(name, unit, state string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, name+" "+unit)
	if state != "" {
		f.active[unit] = state
	}
	return nil
}
func (f *fakeSystemd) Start(ctx context.Context, u string) error { return f.op("start", u, "active") }
func (f *fakeSystemd) Restart(ctx context.Context, u string) error {
	return f.op("restart", u, "active")
}
func (f *fakeSystemd) Stop(ctx context.Context, u string) error { return f.op("stop", u, "inactive") }
func (f *fakeSystemd) ResetFailed(ctx context.Context, u string) error {
	return f.op("reset-failed", u, "")
}
func (f *fakeSystemd) State(ctx context.Context, u string) (systemd.UnitState, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.loaded[u] {
		return systemd.UnitState{LoadState: "not-found", ActiveState: "inactive"}, nil
	}
	a := f.active[u]
	if a == "" {
		a = "inactive"
	}
	return systemd.UnitState{LoadState: "loaded", ActiveState: a, SubState: "x"}, nil
}
func (f *fakeSystemd) take() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.calls
	f.calls = nil
	return c
}

func companionYAML(id, extra string) string {
	return "  companions:\n    - id: " + id + "\n      image: localhost/ui:1\n" + extra
}

func TestCompanionStage(t *testing.T) {
	p := &fakePodman{Images: map[string]bool{"localhost/a:1": true, "localhost/b:1": true}}
	r := newTestReconciler(t, p, map[string]string{"a": companionYAML("a-ui", ""), "b": companionYAML("b-ui", "")})
	dir := filepath.Join(t.TempDir(), "quadlet")
	sd := &fakeSystemd{dir: dir, suffix: ".container", active: map[string]string{}}
	r.cfg.Companions = &CompanionConfig{Mode: ModeQuadlet, Dir: dir, WantedBy: "multi-user.target", Systemd: sd}
	ctx := context.Background()

	rep := r.Pass(ctx, "test")
	noFail(t, rep)
	if got := strings.Join(sd.take(), ","); got != "reload,start lockstep-a-ui.service,start lockstep-b-ui.service" {
		t.Fatalf("first pass: %s", got)
	}
	if st := r.CompanionStats(); st != (CompanionStats{Writes: 2, Reloads: 1}) {
		t.Fatalf("stats %+v", st)
	}
	if len(rep.Companions) != 2 || rep.Companions[0].State != "active/x" || rep.Companions[0].App != "a" || rep.Companions[1].App != "b" {
		t.Fatalf("companions %+v", rep.Companions)
	}
	// No-op pass: no write, no reload, no start.
	rep = r.Pass(ctx, "test")
	noFail(t, rep)
	if got := sd.take(); len(got) != 0 || r.CompanionStats() != (CompanionStats{}) {
		t.Fatalf("no-op pass: %v %+v", got, r.CompanionStats())
	}
	// A unit file deleted by hand is written again, identical: a reload, no restart (issue 16 point
	// 10); a failed unit is reset and started.
	os.Remove(filepath.Join(dir, "lockstep-a-ui.container"))
	sd.active["lockstep-b-ui.service"] = "failed"
	rep = r.Pass(ctx, "test")
	noFail(t, rep)
	if got := strings.Join(sd.take(), ","); got != "reload,reset-failed lockstep-b-ui.service,start lockstep-b-ui.service" {
		t.Fatalf("repair pass: %s", got)
	}
	// Removing app b: stop its companion before its container, then delete the file, one reload.
	os.Remove(filepath.Join(r.cfg.AppsDir, "b.yaml"))
	p.Containers = []engine.Container{{ID: "cb", Name: "b", State: "running", Labels: map[string]string{spec.LabelApp: "b"}}}
	p.Calls = nil
	rep = r.Pass(ctx, "test")
	noFail(t, rep)
	if got := strings.Join(sd.take(), ","); got != "stop lockstep-b-ui.service,reload" {
		t.Fatalf("removal: %s", got)
	}
	// The removed companion's row still names its app (from its unit file's label).
	if i := slices.IndexFunc(rep.Companions, func(c report.AppStatus) bool { return c.ID == "b-ui" }); i < 0 || rep.Companions[i].App != "b" || rep.Companions[i].State != report.StateRemoved {
		t.Fatalf("removed companion's row: %+v", rep.Companions)
	}
	if _, err := os.Stat(filepath.Join(dir, "lockstep-b-ui.container")); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("file of a removed companion left")
	}
	if !slices.Contains(p.Calls, "Stop cb") {
		t.Fatalf("app container not stopped: %v", p.Calls)
	}
	// A file that is not ours is never touched.
	os.WriteFile(filepath.Join(dir, "lockstep-other.container"), []byte("[Container]\nImage=x\n"), 0o644)
	r.Pass(ctx, "test")
	if _, err := os.Stat(filepath.Join(dir, "lockstep-other.container")); err != nil {
		t.Fatal("a foreign unit file was removed")
	}
}

func TestCompanionThatDoesNotLoadIsReported(t *testing.T) {
	p := &fakePodman{Images: map[string]bool{"localhost/a:1": true}}
	r := newTestReconciler(t, p, map[string]string{"a": companionYAML("a-ui", "      env: {X: BROKEN}\n")})
	dir := filepath.Join(t.TempDir(), "quadlet")
	sd := &fakeSystemd{dir: dir, suffix: ".container", active: map[string]string{}}
	r.cfg.Companions = &CompanionConfig{Mode: ModeQuadlet, Dir: dir, Systemd: sd}
	rep := r.Pass(context.Background(), "test")
	// The failure is about the companion, for its app.
	if len(rep.Failures) != 1 || !strings.Contains(rep.Failures[0].Error, "did not load (not-found)") ||
		rep.Failures[0].App != "a" || rep.Failures[0].Subject != outcome.SubjectCompanion || rep.Failures[0].Name != "a-ui" || rep.Failures[0].Class != outcome.ClassFailed {
		t.Fatalf("failures %+v", rep.Failures)
	}
	if len(rep.Apps) != 1 || rep.Apps[0].State != report.StateRunning {
		t.Fatal("a companion failure stopped the app")
	}
}

func noFail(t *testing.T, r *report.Report) {
	t.Helper()
	if len(r.Failures) > 0 {
		t.Fatalf("failures: %+v", r.Failures)
	}
}

// A companion mounts paths of its own app's (or a dependency's) data dir read-only.
func TestCompanionMountsAreReadOnly(t *testing.T) {
	app := &manifest.Loaded{App: manifest.App{ID: "lnd", Name: "lnd", Version: "1", Requires: manifest.Requires{Apps: []string{"bitcoin"}},
		Companions: []manifest.Companion{{ID: "lnd-ui", Image: "ui:1", Mounts: []manifest.DepMount{
			{From: "lnd", Path: "tls.cert", Target: "/lnd/tls.cert"}, {From: "bitcoin", Path: "cookie/", Target: "/btc/"}}}}}}
	if ps := manifest.Validate("lnd.yaml", &app.App, testRoots); len(ps) != 1 || ps[0].Field != "app.container.image" {
		t.Fatalf("problems %v (only the missing app image expected)", ps)
	}
	u, err := quadlet.CompanionUnit(app, 0, testRoots, nil, "multi-user.target")
	if err != nil {
		t.Fatal(err)
	}
	got := fmt.Sprint(u.Volumes)
	want := "[{/var/lib/lockstep/apps/lnd/tls.cert /lnd/tls.cert [ro]} {/var/lib/lockstep/apps/bitcoin/cookie /btc [ro]}]"
	if got != want {
		t.Fatalf("volumes %s, want %s", got, want)
	}
	bad := app.Companions[0]
	bad.Mounts = []manifest.DepMount{{From: "electrs", Path: "x", Target: "/x"}}
	app.Companions = []manifest.Companion{bad}
	ps := manifest.Validate("lnd.yaml", &app.App, testRoots)
	if !strings.Contains(fmt.Sprint(ps), `app.companions[0].mounts[0].from: "electrs" is neither this app nor a dependency`) {
		t.Fatalf("problems %v", ps)
	}
}

// A companion whose mount source does not exist yet waits, unwritten and unstarted, and starts on the
// first pass after the source appears.
func TestCompanionWaitsForItsMountSource(t *testing.T) {
	p := &fakePodman{Images: map[string]bool{"localhost/a:1": true}}
	r := newTestReconciler(t, p, map[string]string{"a": companionYAML("a-ui", "      mounts: [{from: a, path: public/tls.cert, target: /tls.cert}]\n")})
	dir := filepath.Join(t.TempDir(), "quadlet")
	sd := &fakeSystemd{dir: dir, suffix: ".container", active: map[string]string{}}
	r.cfg.Companions = &CompanionConfig{Mode: ModeQuadlet, Dir: dir, WantedBy: "multi-user.target", Systemd: sd}
	ctx := context.Background()
	rep := r.Pass(ctx, "test")
	cert := filepath.Join(r.cfg.Roots.AppData("a"), "public", "tls.cert")
	if len(rep.Failures) != 1 || rep.Failures[0].Error != "waiting for "+cert+" (a mount source) to exist" || rep.Companions[0].State != "waiting" ||
		rep.Failures[0] != (report.Failure{App: "a", Error: rep.Failures[0].Error, Class: outcome.ClassWaiting, Subject: outcome.SubjectCompanion, Name: "a-ui"}) {
		t.Fatalf("failures %+v companions %+v", rep.Failures, rep.Companions)
	}
	if got := sd.take(); len(got) != 0 {
		t.Fatalf("systemd was asked to %v", got)
	}
	if w := r.NextWake(); w.IsZero() || w.Sub(r.cfg.Now()) > CompanionSourceRecheck {
		t.Fatalf("no pass asked for soon: next wake %v", w)
	}
	os.MkdirAll(filepath.Dir(cert), 0o755)
	os.WriteFile(cert, []byte("CERT"), 0o644)
	rep = r.Pass(ctx, "test")
	noFail(t, rep)
	if got := strings.Join(sd.take(), ","); got != "reload,start lockstep-a-ui.service" {
		t.Fatalf("after the source appeared: %s", got)
	}
	if !r.NextWake().IsZero() {
		t.Fatalf("still asking for a pass: %v", r.NextWake())
	}
}
