package reconciler

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/lockstep/lockstep/internal/testenv"
	"github.com/lockstep/lockstep/report"
)

// reloadFailing is the fake systemd whose daemon-reload fails while fail is set (as when systemd is
// wedged, or the bus to it is down).
type reloadFailing struct {
	*fakeSystemd
	fail bool
}

func (r *reloadFailing) Reload(ctx context.Context) error {
	if r.fail {
		r.fakeSystemd.mu.Lock()
		r.fakeSystemd.calls = append(r.fakeSystemd.calls, "reload (fails)")
		r.fakeSystemd.mu.Unlock()
		return errors.New("daemon-reload: Connection timed out")
	}
	return r.fakeSystemd.Reload(ctx)
}

// TestFailedDaemonReloadIsRetried: a daemon-reload that fails is reported for every companion and
// nothing is started; the next pass reloads again although no file changed since (the files were
// written but systemd never read them), and once the reload works the units start. A no-op pass after
// that makes no reload.
func TestFailedDaemonReloadIsRetried(t *testing.T) {
	p := &fakePodman{Images: map[string]bool{"localhost/a:1": true}}
	r := newTestReconciler(t, p, map[string]string{"a": companionYAML("a-ui", "")})
	dir := filepath.Join(t.TempDir(), "quadlet")
	sd := &reloadFailing{fakeSystemd: &fakeSystemd{dir: dir, suffix: ".container", active: map[string]string{}}, fail: true}
	r.cfg.Companions = &CompanionConfig{Mode: ModeQuadlet, Dir: dir, WantedBy: "multi-user.target", Systemd: sd}
	ctx := context.Background()

	rep := r.Pass(ctx, "test")
	if f := failures(rep); !strings.Contains(f["companion a-ui"], "daemon-reload: Connection timed out") {
		t.Fatalf("failures %v", f)
	}
	if got := strings.Join(sd.take(), ","); got != "reload (fails)" {
		t.Fatalf("pass 1: %s", got)
	}
	if len(rep.Apps) != 1 || rep.Apps[0].State != report.StateRunning {
		t.Fatalf("a failed reload stopped the app: %+v", rep.Apps)
	}
	rep = r.Pass(ctx, "test")
	if got := strings.Join(sd.take(), ","); got != "reload (fails)" {
		t.Fatalf("pass 2 did not retry the reload: %q", got)
	}
	sd.fail = false
	rep = r.Pass(ctx, "test")
	noFail(t, rep)
	if got := strings.Join(sd.take(), ","); got != "reload,start lockstep-a-ui.service" {
		t.Fatalf("pass 3: %s", got)
	}
	rep = r.Pass(ctx, "test")
	noFail(t, rep)
	if got := sd.take(); len(got) != 0 {
		t.Fatalf("no-op pass after recovery: %v", got)
	}
}

// TestFullDiskKeepsOldUnitsAndReport: the state dir and the unit dir on a real tmpfs that fills up.
// A pass that must rewrite a unit reports ENOSPC for its companion and neither reloads nor restarts;
// the old unit file and the old report stay intact, no temporary file is left, the app itself is
// unaffected; once space is freed the next pass converges.
func TestFullDiskKeepsOldUnitsAndReport(t *testing.T) {
	if testing.Short() {
		t.Skip("mounts a tmpfs")
	}
	disk := testenv.Tmpfs(t, 256)
	p := &fakePodman{Images: map[string]bool{"localhost/a:1": true}}
	r := newTestReconciler(t, p, map[string]string{"a": companionYAML("a-ui", "")})
	r.cfg.StateDir = filepath.Join(disk, "state")
	os.MkdirAll(r.cfg.StateDir, 0o755)
	dir := filepath.Join(disk, "quadlet")
	sd := &fakeSystemd{dir: dir, suffix: ".container", active: map[string]string{}}
	r.cfg.Companions = &CompanionConfig{Mode: ModeQuadlet, Dir: dir, WantedBy: "multi-user.target", Systemd: sd}
	ctx := context.Background()
	noFail(t, r.Pass(ctx, "test"))
	sd.take()
	unit := filepath.Join(dir, "lockstep-a-ui.container")
	oldUnit, _ := os.ReadFile(unit)
	reportFile := filepath.Join(r.cfg.StateDir, "report.json")
	oldReport, _ := os.ReadFile(reportFile)
	if len(oldUnit) == 0 || !strings.Contains(string(oldReport), `"pass_id": 1`) {
		t.Fatalf("first pass wrote unit %q, report %q", oldUnit, oldReport)
	}

	filler := testenv.Fill(t, disk)
	// The companion's spec changes: its unit must be rewritten.
	y := "app:\n  id: a\n  name: a\n  version: '1'\n  container:\n    image: localhost/a:1\n" +
		companionYAML("a-ui", "      env: {BIG: '"+strings.Repeat("x", 8000)+"'}\n")
	if err := os.WriteFile(filepath.Join(r.cfg.AppsDir, "a.yaml"), []byte(y), 0o644); err != nil {
		t.Fatal(err)
	}
	rep := r.Pass(ctx, "test")
	if f := failures(rep); !strings.Contains(f["companion a-ui"], "no space left on device") || !strings.Contains(f["companion a-ui"], unit) {
		t.Fatalf("failures on a full disk: %v", f)
	}
	if got := sd.take(); len(got) != 0 {
		t.Fatalf("systemd was driven after a failed write: %v", got)
	}
	if len(rep.Apps) != 1 || rep.Apps[0].State != report.StateRunning {
		t.Fatalf("app on a full disk: %+v", rep.Apps)
	}
	if got, _ := os.ReadFile(unit); string(got) != string(oldUnit) {
		t.Fatalf("old unit file changed:\n%s", got)
	}
	if got, _ := os.ReadFile(reportFile); string(got) != string(oldReport) {
		t.Fatalf("old report changed:\n%s", got)
	}
	for _, d := range []string{dir, r.cfg.StateDir} {
		entries, _ := os.ReadDir(d)
		for _, e := range entries {
			if strings.Contains(e.Name(), ".tmp-") {
				t.Fatalf("temporary file %s left in %s", e.Name(), d)
			}
		}
	}
	if saved, err := report.LoadReport(r.cfg.StateDir); err != nil || saved.PassID != 1 {
		t.Fatalf("saved report after the full-disk pass: %+v %v", saved, err)
	}

	os.Remove(filler)
	rep = r.Pass(ctx, "test")
	noFail(t, rep)
	if got, _ := os.ReadFile(unit); !strings.Contains(string(got), "BIG=") {
		t.Fatal("unit not rewritten after space was freed")
	}
	if got := strings.Join(sd.take(), ","); got != "reload,restart lockstep-a-ui.service" {
		t.Fatalf("recovery pass: %s", got)
	}
	if saved, err := report.LoadReport(r.cfg.StateDir); err != nil || saved.PassID != rep.PassID {
		t.Fatalf("report after recovery: %+v %v", saved, err)
	}
}

// TestFullDiskKeepsOldHookOutput: the app's data dir on a real tmpfs that fills up. A pre-start hook
// whose output must change fails with ENOSPC, named in the report; the old rendered file is intact,
// no temporary file is left, and the app is not started on the stale file; once space is freed the
// file is rewritten and the app installed.
func TestFullDiskKeepsOldHookOutput(t *testing.T) {
	if testing.Short() {
		t.Skip("mounts a tmpfs")
	}
	disk := testenv.Tmpfs(t, 256)
	p := &fakePodman{Images: map[string]bool{"localhost/h:1": true}}
	r := newTestReconciler(t, p, map[string]string{"h": "  hooks:\n    pre_start:\n      - {name: conf, template: h.conf.tmpl, path: conf/h.conf}\n"})
	r.cfg.Roots.DataRoot = filepath.Join(disk, "data")
	tmpl := filepath.Join(r.cfg.AppsDir, "h.conf.tmpl")
	if err := os.WriteFile(tmpl, []byte("version={{.Version}}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	// The first pass renders the file, then fails to create (the fake has no such container yet).
	p.Fail = map[string]error{"Create h": errors.New("not yet")}
	r.Pass(ctx, "test")
	out := filepath.Join(disk, "data", "h", "conf", "h.conf")
	old, err := os.ReadFile(out)
	if err != nil || string(old) != "version=1\n" {
		t.Fatalf("hook output %q %v", old, err)
	}
	p.Fail = nil

	filler := testenv.Fill(t, disk)
	if err := os.WriteFile(tmpl, []byte("version={{.Version}}\n"+strings.Repeat("# padding\n", 2000)), 0o644); err != nil {
		t.Fatal(err)
	}
	p.Calls = nil
	rep := r.Pass(ctx, "test")
	if f := failures(rep); !strings.Contains(f["h"], "pre-start hook conf") || !strings.Contains(f["h"], "no space left on device") {
		t.Fatalf("failures on a full disk: %v", f)
	}
	if slices.Contains(p.Calls, "Create h") || slices.Contains(p.Calls, "Start new-h") {
		t.Fatalf("the app was started on a stale config: %v", p.Calls)
	}
	if got, _ := os.ReadFile(out); string(got) != string(old) {
		t.Fatalf("old hook output changed to %d bytes", len(got))
	}
	entries, _ := os.ReadDir(filepath.Dir(out))
	for _, e := range entries {
		if strings.Contains(e.Name(), ".tmp-") {
			t.Fatalf("temporary file %s left", e.Name())
		}
	}

	os.Remove(filler)
	rep = r.Pass(ctx, "test")
	noFail(t, rep)
	if got, _ := os.ReadFile(out); !strings.Contains(string(got), "# padding") {
		t.Fatal("hook output not rewritten after space was freed")
	}
	if !slices.Contains(p.Calls, "Create h") {
		t.Fatalf("not installed after recovery: %v", p.Calls)
	}
}
