//go:build sandbox

package sandbox

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lockstep/lockstep/systemd"
	"github.com/lockstep/lockstep/test/e2e"
)

// The suites' shared helpers (test/e2e), under this package's short names.
var (
	sh  = e2e.Sh
	try = e2e.Try
)

type report = e2e.Report

// eventually polls f until it is true, failing the test after timeout.
func eventually(t *testing.T, what string, timeout time.Duration, f func() bool) {
	t.Helper()
	e2e.Eventually(t, what, timeout, 200*time.Millisecond, func() string {
		if f() {
			return ""
		}
		return "not yet"
	})
}

// getReport is lockstepd's report from the system scope's API socket.
func getReport(t *testing.T) report {
	t.Helper()
	r, _ := e2e.GetReport(t, "/run/lockstep/lockstep.sock")
	return r
}

func unitState(t *testing.T, unit string) systemd.UnitState {
	t.Helper()
	c := systemd.New(systemd.System)
	defer c.Close()
	s, err := c.State(context.Background(), unit)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestPackageEndToEnd installs the .deb inside the sandbox (whose /usr, /etc and /var/lib/dpkg are
// private overlays) and drives lockstep as an operator's host would.
func TestPackageEndToEnd(t *testing.T) {
	deb := os.Getenv("LOCKSTEP_DEB")
	if deb == "" {
		t.Fatal("LOCKSTEP_DEB names the package to install (make test-sandbox builds it)")
	}
	// Faster timer and watchdog for the test, as an operator would with drop-ins.
	for unit, body := range map[string]string{
		"lockstep-reconcile.timer": "[Timer]\nOnActiveSec=\nOnActiveSec=1s\nOnUnitActiveSec=2s\n",
		"lockstepd.service":        "[Service]\nWatchdogSec=4s\nRestartSec=1s\n",
	} {
		d := "/etc/systemd/system/" + unit + ".d"
		os.MkdirAll(d, 0o755)
		os.WriteFile(filepath.Join(d, "test.conf"), []byte(body), 0o644)
	}
	sh(t, "dpkg", "-i", deb)
	t.Cleanup(func() { exec.Command("dpkg", "--purge", "lockstep").Run() })

	// The package enabled and started the socket and the timer.
	if s := unitState(t, "lockstepd.socket"); s.ActiveState != "active" {
		t.Fatalf("lockstepd.socket %+v", s)
	}
	if s := unitState(t, "lockstep-reconcile.timer"); s.ActiveState != "active" {
		t.Fatalf("timer %+v", s)
	}
	// An app with a companion, installed from the shipped examples.
	sh(t, "sh", "-c", "mkdir -p /usr/share/lockstep/catalog && cp -r /usr/share/lockstep/examples/demo/. /usr/share/lockstep/catalog/ && sed -i 's|localhost/lockstep/busybox:demo|"+image+"|' /usr/share/lockstep/catalog/*.yaml /usr/share/lockstep/catalog/*/Containerfile")
	sh(t, "systemctl", "stop", "lockstepd.service")
	// Socket activation: a request on the socket starts the daemon.
	out := sh(t, "curl", "-sS", "--fail", "--max-time", "30", "--unix-socket", "/run/lockstep/lockstep.sock", "http://lockstep/v1/healthz")
	if !strings.Contains(out, `"status"`) || unitState(t, "lockstepd.service").ActiveState != "active" {
		t.Fatalf("socket activation: %s %+v", out, unitState(t, "lockstepd.service"))
	}
	// The page demo-web and its companion serve.
	os.MkdirAll("/var/lib/lockstep/apps/demo-web/www", 0o755)
	os.WriteFile("/var/lib/lockstep/apps/demo-web/www/index.html", []byte("hello from busybox\n"), 0o644)
	// D-Bus activation: with the daemon stopped, a call starts it.
	sh(t, "systemctl", "stop", "lockstepd.service")
	sh(t, "busctl", "--system", "--timeout=120", "call", "org.lockstep.Reconciler1", "/org/lockstep/Reconciler1", "org.lockstep.Reconciler1", "Install", "s", "demo-web")
	if s := unitState(t, "lockstepd.service"); s.ActiveState != "active" {
		t.Fatalf("D-Bus activation: %+v", s)
	}
	t.Cleanup(func() { stopLockstep(); exec.Command("podman", "rm", "-f", "-t", "0", "demo-web", "demo-web-ui").Run() })
	r := getReport(t)
	if r.CompanionMode != "quadlet" || len(r.Apps) != 1 || r.Apps[0].State != "running" {
		t.Fatalf("after install: %+v", r)
	}
	eventually(t, "the companion serving its page", 30*time.Second, func() bool {
		out, err := try("curl", "-sS", "--max-time", "2", "http://127.0.0.1:18081/")
		return err == nil && strings.Contains(out, "busybox")
	})
	// A companion stopped by hand: systemd's signal reaches lockstepd, which starts it again.
	sh(t, "systemctl", "stop", "lockstep-demo-web-ui.service")
	eventually(t, "the stopped companion active again", 15*time.Second, func() bool {
		return unitState(t, "lockstep-demo-web-ui.service").ActiveState == "active"
	})
	if out, _ := try("journalctl", "--no-pager", "-u", "lockstepd.service"); !strings.Contains(out, "companion unit stopped") {
		t.Fatalf("lockstepd did not see the unit stop:\n%s", out)
	}
	// The timer drives passes.
	first := getReport(t).PassID
	eventually(t, "timer-driven passes", 20*time.Second, func() bool { return getReport(t).PassID >= first+2 })
	// systemctl reload: manifests reloaded (a pass with trigger reload follows).
	sh(t, "systemctl", "reload", "lockstepd.service")
	eventually(t, "a reload pass", 10*time.Second, func() bool { return strings.Contains(getReport(t).Trigger, "reload") })
	// An unprivileged user: AccessDenied over D-Bus; 403 over the socket once its mode lets them in.
	if out, err := try("setpriv", "--reuid=nobody", "--regid=nogroup", "--init-groups", "--", "busctl", "--system", "call",
		"org.lockstep.Reconciler1", "/org/lockstep/Reconciler1", "org.lockstep.Reconciler1", "Reconcile"); err == nil || !(strings.Contains(out, "needs root or membership of group lockstep") || strings.Contains(out, "polkit refused action org.lockstep.reconcile") || strings.Contains(out, "Reconcile: asking polkit")) {
		t.Fatalf("nobody over D-Bus: %v %s", err, out)
	}
	os.Chmod("/run/lockstep/lockstep.sock", 0o666)
	out, _ = try("setpriv", "--reuid=nobody", "--regid=nogroup", "--init-groups", "--", "curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}",
		"-X", "POST", "--unix-socket", "/run/lockstep/lockstep.sock", "http://lockstep/v1/reconcile")
	if out != "403" {
		t.Fatalf("nobody over the socket: %s", out)
	}
	// The watchdog restarts a hung daemon.
	before := unitState(t, "lockstepd.service").NRestarts
	os.WriteFile("/run/lockstep/test-hang-watchdog", nil, 0o644)
	eventually(t, "a watchdog restart", 30*time.Second, func() bool {
		s := unitState(t, "lockstepd.service")
		return s.NRestarts > before
	})
	os.Remove("/run/lockstep/test-hang-watchdog")
	eventually(t, "the daemon back", 30*time.Second, func() bool { return unitState(t, "lockstepd.service").ActiveState == "active" })
	// A pre-start ownership hook works under the unit's hardening (chown is a privileged syscall).
	os.WriteFile("/usr/share/lockstep/catalog/owned-app.yaml", []byte("app:\n  id: owned-app\n  name: owned\n  version: '1'\n  container:\n    image: "+image+
		"\n    command: [sleep, '100000']\n    user: '1000:1000'\n    volumes: ['${APP_DATA}/state:/state']\n    stop_grace_period: 1s\n  hooks:\n    pre_start:\n      - {path: state, owner: '1000:1000'}\n"), 0o644)
	t.Cleanup(func() { stopLockstep(); exec.Command("podman", "rm", "-f", "-t", "0", "owned-app").Run() })
	sh(t, "busctl", "--system", "--timeout=120", "call", "org.lockstep.Reconciler1", "/org/lockstep/Reconciler1", "org.lockstep.Reconciler1", "Install", "s", "owned-app")
	if out := sh(t, "stat", "-c", "%u:%g", "/var/lib/lockstep/apps/owned-app/state"); out != "1000:1000" {
		t.Fatalf("the ownership hook left state owned by %s; report: %+v", out, getReport(t))
	}
	if out, err := try("podman", "exec", "owned-app", "touch", "/state/written"); err != nil {
		t.Fatalf("the app's user cannot write its state dir: %v %s", err, out)
	}
	// systemctl stop during a pass: the pass (a slow image build) finishes and its report is kept.
	os.MkdirAll("/usr/share/lockstep/catalog/slow", 0o755)
	os.WriteFile("/usr/share/lockstep/catalog/slow/Containerfile", []byte("FROM "+image+"\nRUN sleep 4\n"), 0o644)
	os.WriteFile("/usr/share/lockstep/catalog/slow-app.yaml", []byte("app:\n  id: slow-app\n  name: slow\n  version: '1'\n  container:\n    build: {context: slow, tag: 'localhost/slow:1'}\n    command: [sleep, '100000']\n    stop_grace_period: 1s\n"), 0o644)
	t.Cleanup(func() { stopLockstep(); exec.Command("podman", "rm", "-f", "-t", "0", "slow-app").Run() })
	install := exec.Command("busctl", "--system", "--timeout=120", "call", "org.lockstep.Reconciler1", "/org/lockstep/Reconciler1", "org.lockstep.Reconciler1", "Install", "s", "slow-app")
	if err := install.Start(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the slow pass to start", 20*time.Second, func() bool {
		out, _ := try("busctl", "--system", "get-property", "org.lockstep.Reconciler1", "/org/lockstep/Reconciler1", "org.lockstep.Reconciler1", "State")
		return strings.Contains(out, "reconciling")
	})
	t0 := time.Now()
	sh(t, "systemctl", "stop", "lockstepd.service")
	install.Wait()
	if time.Since(t0) < 2*time.Second {
		t.Fatalf("lockstepd stopped after %s: the build cannot have finished", time.Since(t0))
	}
	var saved report
	b, _ := os.ReadFile("/var/lib/lockstep/report.json")
	json.Unmarshal(b, &saved)
	var installed bool
	for _, a := range saved.Actions {
		installed = installed || (a.App == "slow-app" && a.Action == "install")
	}
	if !installed || sh(t, "podman", "inspect", "--format", "{{.State.Status}}", "slow-app") != "running" {
		t.Fatalf("the pass cut short by the stop: %s", b)
	}
	// Purge: the package goes, app data stays.
	os.WriteFile("/var/lib/lockstep/apps/demo-web/www/kept.html", []byte("keep"), 0o644)
	sh(t, "dpkg", "--purge", "lockstep")
	if _, err := os.Stat("/var/lib/lockstep/apps/demo-web/www/kept.html"); err != nil {
		t.Fatalf("purge removed app data: %v", err)
	}
	if _, err := os.Stat("/usr/bin/lockstepd"); err == nil {
		t.Fatal("purge left the binary")
	}
	fmt.Println("end to end: ok")
}

// stopLockstep stops everything that would start lockstepd and recreate a container a cleanup removes.
func stopLockstep() {
	exec.Command("systemctl", "stop", "lockstep-reconcile.timer", "lockstepd.socket", "lockstepd.service").Run()
}
