package main

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/lockstep/lockstep/dbusapi"
	"github.com/lockstep/lockstep/internal/testenv"
	"github.com/lockstep/lockstep/outcome"
	"github.com/lockstep/lockstep/reconciler"
	"github.com/lockstep/lockstep/reconciler/deadline"
	"github.com/lockstep/lockstep/report"
)

// hungPodman is a unix socket that accepts connections and never answers: a podman service that is
// stuck. (A real podman cannot be made to hang on demand; a socket that says nothing is exactly what
// lockstepd sees of one.)
func hungPodman(t *testing.T, dir string) string {
	t.Helper()
	sock := filepath.Join(dir, "hung.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c) // held open, never read nor answered
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return "unix://" + sock
}

// TestHungPodmanGivesTimedOutPasses: with a podman that accepts and never answers, the start-up pass
// reports within its deadline, its failure classified as a timeout; the next pass runs; the watchdog
// is fed all along (passes make progress: it is podman that is stuck). Before issue 15 the first
// pass waited forever (passes had no deadline), every later one with it, while the watchdog was fed.
func TestHungPodmanGivesTimedOutPasses(t *testing.T) {
	testenv.Need(t, "busctl")
	bus := testenv.StartBus(t, testenv.BusConfig{})
	dir := t.TempDir()
	apps, state := filepath.Join(dir, "apps.d"), filepath.Join(dir, "state")
	os.MkdirAll(apps, 0o755)
	writeApp(t, apps, "hung-a", "  container:\n    image: localhost/x:1\n")
	ns := newNotifySocket(t, dir)
	t0 := time.Now()
	d := startDaemon(t, []string{"NOTIFY_SOCKET=" + ns.path, "WATCHDOG_USEC=400000"}, "--bus", bus.Address,
		"--podman-url", hungPodman(t, dir), "--apps-dir", apps, "--state-dir", state, "--runtime-dir", filepath.Join(dir, "run"),
		"--systemd-scope", "none", "--podman-timeout", "1s", "--pass-timeout", "5s", "--stop-timeout", "20s", "--stop-grace", "2s")
	ns.waitFor(t, "READY=1", 20*time.Second)
	ns.waitFor(t, "1 failing; pass 1", 20*time.Second)
	if took := time.Since(t0); took > 10*time.Second {
		t.Fatalf("the first pass reported %s after the start, past its 5 s deadline", took)
	}
	rep, err := report.LoadReport(state)
	if err != nil || rep == nil || len(rep.Failures) != 1 {
		t.Fatalf("report %+v %v", rep, err)
	}
	if f := rep.Failures[0]; f.App != "hung-a" || f.Class != outcome.ClassTimeout || !strings.Contains(f.Error, "timed out: podman list gave no answer within 1s") {
		t.Fatalf("failure %+v, want hung-a's list classified as a timeout", f)
	}
	// The next pass runs, and reports as well.
	t1 := time.Now()
	out, err := bus.Run("", "busctl", "--system", "call", dbusapi.BusName, string(dbusapi.ObjectPath), dbusapi.Interface, "Reconcile")
	if err != nil {
		t.Fatalf("Reconcile: %v %s", err, out)
	}
	if took := time.Since(t1); took > 8*time.Second {
		t.Fatalf("the second pass took %s", took)
	}
	if rep, _ := report.LoadReport(state); rep == nil || rep.PassID != 2 || len(rep.Failures) != 1 || rep.Failures[0].Class != outcome.ClassTimeout {
		t.Fatalf("second report %+v", rep)
	}
	// Fed while passes progress.
	ns.waitFor(t, "WATCHDOG=1", 5*time.Second)
	d.Cmd.Process.Signal(syscall.SIGTERM)
	if code := d.Wait(t, 20*time.Second); code != 0 {
		t.Fatalf("exit %d", code)
	}
}

// TestSigtermCancelsAHungPassAfterTheStopGrace: SIGTERM while a pass waits on a hung podman (a call
// deadline longer than the stop): the pass goes on for the stop grace, is then cancelled, reports its
// failure as cancelled and lockstepd exits 0, well before --stop-timeout. Before issue 15 the pass
// ran under context.WithoutCancel: lockstepd waited the whole --stop-timeout and exited 1.
func TestSigtermCancelsAHungPassAfterTheStopGrace(t *testing.T) {
	bus := testenv.StartBus(t, testenv.BusConfig{})
	dir := t.TempDir()
	apps, state := filepath.Join(dir, "apps.d"), filepath.Join(dir, "state")
	os.MkdirAll(apps, 0o755)
	writeApp(t, apps, "hung-b", "  container:\n    image: localhost/x:1\n")
	ns := newNotifySocket(t, dir)
	d := startDaemon(t, []string{"NOTIFY_SOCKET=" + ns.path}, "--bus", bus.Address,
		"--podman-url", hungPodman(t, dir), "--apps-dir", apps, "--state-dir", state, "--runtime-dir", filepath.Join(dir, "run"),
		"--systemd-scope", "none", "--podman-timeout", "5m", "--stop-timeout", "30s", "--stop-grace", "2s")
	ns.waitFor(t, "STATUS=reconciling (startup)", 30*time.Second)
	time.Sleep(500 * time.Millisecond)
	sent := time.Now()
	d.Cmd.Process.Signal(syscall.SIGTERM)
	if code := d.Wait(t, 25*time.Second); code != 0 {
		t.Fatalf("exit %d", code)
	}
	took := time.Since(sent)
	if took < 1500*time.Millisecond || took > 10*time.Second {
		t.Fatalf("exited %s after SIGTERM, want about the 2 s stop grace", took)
	}
	rep, err := report.LoadReport(state)
	if err != nil || rep == nil || len(rep.Failures) != 1 {
		t.Fatalf("report %+v %v", rep, err)
	}
	if f := rep.Failures[0]; f.Class != outcome.ClassCancelled || !strings.Contains(f.Error, "cancelled: lockstepd is stopping") {
		t.Fatalf("failure %+v, want the list cancelled by the stop", f)
	}
}

// TestPodmanDownAtStartThenUp: lockstepd starts while podman is down (the start-up pass fails); when
// podman comes up, a pass follows within 2 s, brought by the event stream that opens, and installs the
// app. Before issue 15 the first stream that opened never asked for that pass: the app waited for the
// timer or a call.
func TestPodmanDownAtStartThenUp(t *testing.T) {
	pm := realPodman(t)
	bus := testenv.StartBus(t, testenv.BusConfig{})
	dir := t.TempDir()
	apps := filepath.Join(dir, "apps.d")
	os.MkdirAll(apps, 0o755)
	writeApp(t, apps, "late-a", fmt.Sprintf("  container:\n    image: %s\n    command: [sleep, '100000']\n    stop_grace_period: 1s\n", image))
	t.Cleanup(func() { pm.CLI("rm", "-f", "-t", "0", "late-a") })
	pm.StopService()
	restarted := false
	t.Cleanup(func() {
		if !restarted {
			pm.RestartService()
		}
	})
	ns := newNotifySocket(t, dir)
	d := startDaemon(t, []string{"NOTIFY_SOCKET=" + ns.path}, "--bus", bus.Address, "--podman-url", pm.URL(), "--apps-dir", apps,
		"--state-dir", filepath.Join(dir, "state"), "--runtime-dir", filepath.Join(dir, "run"), "--systemd-scope", "none")
	ns.waitFor(t, "1 failing; pass 1", 20*time.Second)
	time.Sleep(3 * time.Second) // podman stays down for a while: the watch has tried several times
	if err := pm.RestartService(); err != nil {
		t.Fatal(err)
	}
	restarted = true
	up := time.Now()
	ns.waitFor(t, "STATUS=reconciling (events-reconnected)", 5*time.Second)
	if took := time.Since(up); took > 2*time.Second {
		t.Fatalf("the pass came %s after podman answered, want within 2 s", took)
	}
	ns.waitFor(t, "0 failing; pass 2", 30*time.Second)
	if s := pm.MustCLI(t, "inspect", "--format", "{{.State.Status}}", "late-a"); s != "running" {
		t.Fatalf("late-a is %s", s)
	}
	d.Cmd.Process.Signal(syscall.SIGTERM)
	d.Wait(t, 30*time.Second)
}

func TestDeadlineFlags(t *testing.T) {
	o, err := parseFlags(nil)
	if err != nil || o.stopGrace != 9*time.Minute+30*time.Second || o.passTimeout != reconciler.PassTimeout ||
		o.callTimeout != deadline.CallTimeout || o.pullTimeout != deadline.PullTimeout {
		t.Fatalf("defaults: %+v %v", o, err)
	}
	if o, err := parseFlags([]string{"--stop-timeout", "20s"}); err != nil || o.stopGrace != 10*time.Second {
		t.Fatalf("--stop-timeout 20s: grace %v %v, want 10s", o, err)
	}
	for _, args := range [][]string{{"--stop-grace", "10m"}, {"--stop-grace", "-1s"}, {"--podman-timeout", "0"}, {"--pass-timeout", "-1m"}} {
		if _, err := parseFlags(args); err == nil {
			t.Fatalf("%v accepted", args)
		}
	}
}
