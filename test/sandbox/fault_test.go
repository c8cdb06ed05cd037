//go:build sandbox

package sandbox

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/lockstep/lockstep/reconciler/companions"
	lsreport "github.com/lockstep/lockstep/report"
	"github.com/lockstep/lockstep/systemd"
)

// TestDaemonReloadFailureIsRetried makes a real daemon-reload fail: systemd refuses to reload when
// /run has less than 16 MiB free (it serializes its state there first), and the sandbox's /run is a
// tmpfs of its own, which the test shrinks to what it holds plus 4 MiB. The companion's unit file is
// written, the reload fails and is reported, nothing is started; the next pass tries the reload again
// although no file changed; once /run has room again a pass reloads and starts the unit.
func TestDaemonReloadFailureIsRetried(t *testing.T) {
	e := newEnv(t, companions.ModeService, systemd.System)
	id, appID := "sb-reload-ui", "sb-reload"
	unit := "lockstep-" + id + ".service"
	e.app(appID, companionBody(id, 18099, "host"))
	t.Cleanup(func() { exec.Command("podman", "rm", "-f", "-t", "0", appID, id).Run() })

	var st unix.Statfs_t
	if err := unix.Statfs("/run", &st); err != nil {
		t.Fatal(err)
	}
	used := (st.Blocks - st.Bfree) * uint64(st.Bsize)
	size := func(s string) {
		t.Helper()
		if out, err := exec.Command("mount", "-o", "remount,size="+s, "/run").CombinedOutput(); err != nil {
			t.Fatalf("remounting /run with size %s: %v %s", s, err, out)
		}
	}
	restored := false
	restore := func() {
		if !restored {
			size(fmt.Sprintf("%dk", st.Blocks*uint64(st.Bsize)/1024))
			restored = true
		}
	}
	t.Cleanup(restore)
	size(fmt.Sprintf("%dk", used/1024+4096))

	r := e.pass()
	fail := failureOf(r, id)
	if !strings.Contains(fail, "daemon-reload") {
		t.Fatalf("pass with a full /run: failure %q (all: %+v)", fail, r.Failures)
	}
	t.Logf("systemd's refusal: %s", fail)
	if _, err := os.Stat(filepath.Join(e.cc.Dir, unit)); err != nil {
		t.Fatalf("unit file not written: %v", err)
	}
	// (systemd loads a unit never seen before from disk when it is first referenced, reload or not:
	// what matters is that lockstep starts nothing after a failed reload.)
	if s := e.state(unit); s.ActiveState != "inactive" {
		t.Fatalf("unit started although the reload failed: %+v", s)
	}
	r = e.pass()
	if fail := failureOf(r, id); !strings.Contains(fail, "daemon-reload") {
		t.Fatalf("second pass did not try the reload again: failure %q", fail)
	}

	restore()
	r = e.pass()
	noFailures(t, r)
	if s := e.state(unit); s.ActiveState != "active" {
		t.Fatalf("after /run has room: %+v", s)
	}
	// Uninstall: companion stopped, file deleted.
	os.Remove(filepath.Join(e.apps, appID+".yaml"))
	noFailures(t, e.pass())
	if _, err := os.Stat(filepath.Join(e.cc.Dir, unit)); !os.IsNotExist(err) {
		t.Fatalf("unit file left after uninstall: %v", err)
	}
}

func failureOf(r *lsreport.Report, app string) string {
	for _, f := range r.Failures {
		if f.App == app || f.Name == app { // a companion's failure: App is its app, Name the companion
			return f.Error
		}
	}
	return ""
}
