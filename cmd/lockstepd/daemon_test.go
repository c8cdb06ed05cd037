package main

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"

	"github.com/lockstep/lockstep/dbusapi"
	"github.com/lockstep/lockstep/internal/testenv"
	"github.com/lockstep/lockstep/report"
)

// notifySocket is a real unixgram NOTIFY_SOCKET that records every message in order.
type notifySocket struct {
	path string
	conn *net.UnixConn
	mu   sync.Mutex
	msgs []string
	ch   chan string
}

func newNotifySocket(t testing.TB, dir string) *notifySocket {
	t.Helper()
	os.MkdirAll(dir, 0o755)
	path := filepath.Join(dir, "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	ns := &notifySocket{path: path, conn: conn, ch: make(chan string, 1000)}
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				close(ns.ch)
				return
			}
			ns.mu.Lock()
			ns.msgs = append(ns.msgs, string(buf[:n]))
			ns.mu.Unlock()
			ns.ch <- string(buf[:n])
		}
	}()
	t.Cleanup(func() { conn.Close() })
	return ns
}

// waitFor returns the first message (from now on) containing want.
func (ns *notifySocket) waitFor(t testing.TB, want string, timeout time.Duration) string {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case m, ok := <-ns.ch:
			if !ok {
				t.Fatalf("notify socket closed before %q", want)
			}
			if strings.Contains(m, want) {
				return m
			}
		case <-deadline:
			t.Fatalf("no %q within %s; got %q", want, timeout, ns.all())
		}
	}
}

func (ns *notifySocket) all() []string {
	ns.mu.Lock()
	defer ns.mu.Unlock()
	return append([]string(nil), ns.msgs...)
}

// daemonProc is lockstepd under test, this test binary run as it (LOCKSTEPD_TEST_MAIN): the
// process part of testenv's builder.
type daemonProc = testenv.Daemon

// startDaemon runs lockstepd with args and env added; the test's cleanup kills it.
func startDaemon(t testing.TB, env []string, args ...string) *daemonProc {
	t.Helper()
	d := &testenv.Daemon{}
	d.Start(t, os.Args[0], append([]string{"LOCKSTEPD_TEST_MAIN=1"}, env...), args...)
	return d
}

func writeApp(t testing.TB, dir, id, body string) {
	t.Helper()
	y := fmt.Sprintf("app:\n  id: %s\n  name: %s\n  version: '1'\n%s", id, id, body)
	if err := os.WriteFile(filepath.Join(dir, id+".yaml"), []byte(y), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestDaemonLifecycleAndNotify(t *testing.T) {
	testenv.Need(t, "busctl")
	pm := realPodman(t)
	bus := testenv.StartBus(t, testenv.BusConfig{Policies: []string{"../../units/org.lockstep.Reconciler1.conf"}})
	dir := t.TempDir()
	apps := filepath.Join(dir, "apps.d")
	os.MkdirAll(apps, 0o755)
	writeApp(t, apps, "life-a", fmt.Sprintf("  container:\n    image: %s\n    command: [sleep, '1000']\n    stop_grace_period: 1s\n", image))
	t.Cleanup(func() { pm.CLI("rm", "-f", "-t", "0", "life-a") })
	ns := newNotifySocket(t, dir)
	watcher, err := dbus.Connect(bus.Address)
	if err != nil {
		t.Fatal(err)
	}
	defer watcher.Close()

	d := startDaemon(t, []string{"NOTIFY_SOCKET=" + ns.path, "WATCHDOG_USEC=400000"},
		"--bus", bus.Address, "--podman-url", pm.URL(), "--apps-dir", apps, "--state-dir", filepath.Join(dir, "state"),
		"--runtime-dir", filepath.Join(dir, "run"), "--log-level", "debug")

	ready := ns.waitFor(t, "READY=1", 20*time.Second)
	// READY only after the name is owned.
	var owned bool
	if err := watcher.BusObject().Call("org.freedesktop.DBus.NameHasOwner", 0, dbusapi.BusName).Store(&owned); err != nil || !owned {
		t.Fatalf("READY=1 before %s was owned (%v)", dbusapi.BusName, err)
	}
	if !strings.Contains(ready, "STATUS=idle: 1 apps installed") {
		t.Fatalf("READY message %q lacks the summary", ready)
	}
	ns.waitFor(t, "STATUS=idle: 1 apps, 0 failing; pass 1", 20*time.Second) // the start-up pass
	ns.waitFor(t, "WATCHDOG=1", 2*time.Second)
	ns.waitFor(t, "WATCHDOG=1", 2*time.Second)

	out, err := bus.Run("", "busctl", "--system", "--json=short", "call", dbusapi.BusName, string(dbusapi.ObjectPath), dbusapi.Interface, "Reconcile")
	if err != nil || !strings.Contains(out, `"PassId":{"type":"t","data":2}`) {
		t.Fatalf("Reconcile over busctl: %v %s", err, out)
	}
	if s := pm.MustCLI(t, "inspect", "--format", "{{.State.Status}}", "life-a"); s != "running" {
		t.Fatalf("life-a is %s", s)
	}

	// SIGHUP reloads: RELOADING=1 then READY=1.
	d.Cmd.Process.Signal(syscall.SIGHUP)
	ns.waitFor(t, "RELOADING=1", 5*time.Second)
	ns.waitFor(t, "READY=1", 5*time.Second)

	// SIGTERM: STOPPING=1, exit 0.
	d.Cmd.Process.Signal(syscall.SIGTERM)
	ns.waitFor(t, "STOPPING=1", 5*time.Second)
	if code := d.Wait(t, 30*time.Second); code != 0 {
		t.Fatalf("exit %d after SIGTERM", code)
	}
	// The order of the whole conversation.
	var kinds []string
	for _, m := range ns.all() {
		for _, k := range []string{"READY=1", "RELOADING=1", "STOPPING=1"} {
			if strings.Contains(m, k) {
				kinds = append(kinds, k)
			}
		}
	}
	if got := strings.Join(kinds, " "); got != "READY=1 RELOADING=1 READY=1 STOPPING=1" {
		t.Fatalf("notify order: %s", got)
	}
}

func TestPodmanDownAtStartIsDegradedNotFatal(t *testing.T) {
	bus := testenv.StartBus(t, testenv.BusConfig{})
	dir := t.TempDir()
	apps := filepath.Join(dir, "apps.d")
	os.MkdirAll(apps, 0o755)
	writeApp(t, apps, "deg-a", "  container:\n    image: x:1\n")
	ns := newNotifySocket(t, dir)
	d := startDaemon(t, []string{"NOTIFY_SOCKET=" + ns.path}, "--bus", bus.Address, "--podman-url", "unix://"+filepath.Join(dir, "none.sock"),
		"--apps-dir", apps, "--state-dir", filepath.Join(dir, "state"), "--runtime-dir", filepath.Join(dir, "run"))
	m := ns.waitFor(t, "READY=1", 20*time.Second)
	if !strings.Contains(m, "degraded: podman unreachable") {
		t.Fatalf("READY without the degraded note: %q", m)
	}
	ns.waitFor(t, "1 failing", 20*time.Second)
	d.Cmd.Process.Signal(syscall.SIGTERM)
	if code := d.Wait(t, 20*time.Second); code != 0 {
		t.Fatalf("exit %d", code)
	}
}

func TestSecondInstanceFailsOnName(t *testing.T) {
	bus := testenv.StartBus(t, testenv.BusConfig{})
	holder, err := dbus.Connect(bus.Address)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close()
	if _, err := holder.RequestName(dbusapi.BusName, dbus.NameFlagDoNotQueue); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "apps.d"), 0o755)
	d := startDaemon(t, nil, "--bus", bus.Address, "--podman-url", "unix:///nonexistent", "--apps-dir", filepath.Join(dir, "apps.d"),
		"--state-dir", filepath.Join(dir, "state"), "--runtime-dir", filepath.Join(dir, "run"))
	if code := d.Wait(t, 20*time.Second); code != 1 {
		t.Fatalf("exit %d with the name taken, want 1", code)
	}
}

// TestSigtermDuringSlowBuild: SIGTERM arrives while the start-up pass builds an image; lockstepd
// finishes the build and the pass, persists its report and exits 0. Calls during the stop get
// ShuttingDown.
func TestSigtermDuringSlowBuild(t *testing.T) {
	pm := realPodman(t)
	bus := testenv.StartBus(t, testenv.BusConfig{})
	dir := t.TempDir()
	apps := filepath.Join(dir, "apps.d")
	ctxDir := filepath.Join(apps, "slow") // beside the manifests: a build context is relative to their directory
	os.MkdirAll(apps, 0o755)
	os.MkdirAll(ctxDir, 0o755)
	os.WriteFile(filepath.Join(ctxDir, "Containerfile"), []byte("FROM "+image+"\nRUN sleep 4\n"), 0o644)
	tag := fmt.Sprintf("localhost/lockstep-test/slow:%d", time.Now().UnixNano())
	writeApp(t, apps, "slow-build", fmt.Sprintf("  container:\n    build: {context: slow, tag: %q}\n    command: [sleep, '1000']\n    stop_grace_period: 1s\n", tag))
	t.Cleanup(func() { pm.CLI("rm", "-f", "-t", "0", "slow-build") })
	ns := newNotifySocket(t, dir)
	state := filepath.Join(dir, "state")
	d := startDaemon(t, []string{"NOTIFY_SOCKET=" + ns.path}, "--bus", bus.Address, "--podman-url", pm.URL(), "--apps-dir", apps,
		"--state-dir", state, "--runtime-dir", filepath.Join(dir, "run"))
	ns.waitFor(t, "STATUS=reconciling (startup)", 20*time.Second)
	time.Sleep(1 * time.Second) // well inside the 4 s build
	sent := time.Now()
	d.Cmd.Process.Signal(syscall.SIGTERM)
	ns.waitFor(t, "STOPPING=1", 5*time.Second)
	out, err := bus.Run("", "busctl", "--system", "call", dbusapi.BusName, string(dbusapi.ObjectPath), dbusapi.Interface, "Reconcile")
	if err == nil || !strings.Contains(out, "shutting down") {
		t.Fatalf("Reconcile while stopping: %v %s", err, out)
	}
	if code := d.Wait(t, 60*time.Second); code != 0 {
		t.Fatalf("exit %d", code)
	}
	if waited := time.Since(sent); waited < 2*time.Second {
		t.Fatalf("exited %s after SIGTERM: the build cannot have finished", waited)
	}
	rep, err := report.LoadReport(state)
	if err != nil || rep == nil {
		t.Fatalf("report not persisted: %v", err)
	}
	b, _ := json.Marshal(rep)
	if rep.PassID != 1 || len(rep.Actions) != 1 || rep.Actions[0].Action != "install" || len(rep.Failures) != 0 {
		t.Fatalf("persisted report %s", b)
	}
	if s := pm.MustCLI(t, "inspect", "--format", "{{.State.Status}}", "slow-build"); s != "running" {
		t.Fatalf("slow-build is %s", s)
	}
}

// TestInstallAndRemoveOverDBus: Install links a catalog app and the pass runs it; Remove with purge
// removes the container and then the data; a catalog manifest with problems is refused by name.
func TestInstallAndRemoveOverDBus(t *testing.T) {
	pm := realPodman(t)
	bus := testenv.StartBus(t, testenv.BusConfig{Policies: []string{"../../units/org.lockstep.Reconciler1.conf"}})
	dir := t.TempDir()
	apps, catalog, state := filepath.Join(dir, "apps.d"), filepath.Join(dir, "catalog"), filepath.Join(dir, "state")
	os.MkdirAll(apps, 0o755)
	os.MkdirAll(catalog, 0o755)
	// inst-a's image is a tag of its own: a purge removes it (the tag only, as the shared image has others).
	instImage := fmt.Sprintf("localhost/lockstep-test/inst-a:%d", time.Now().UnixNano())
	pm.MustCLI(t, "tag", image, instImage)
	t.Cleanup(func() { pm.CLI("rmi", "--ignore", instImage) })
	writeApp(t, catalog, "inst-a", fmt.Sprintf("  container:\n    image: %s\n    command: [sh, -c, 'echo hi > /data/hello; exec sleep 1000']\n    volumes: ['${APP_DATA}/data:/data']\n    stop_grace_period: 1s\n", instImage))
	writeApp(t, catalog, "inst-bad", "  container:\n    image: 'NOT VALID'\n")
	t.Cleanup(func() { pm.CLI("rm", "-f", "-t", "0", "inst-a") })
	ns := newNotifySocket(t, dir)
	d := startDaemon(t, []string{"NOTIFY_SOCKET=" + ns.path}, "--bus", bus.Address, "--podman-url", pm.URL(), "--apps-dir", apps,
		"--catalog-dir", catalog, "--state-dir", state, "--runtime-dir", filepath.Join(dir, "run"))
	ns.waitFor(t, "READY=1", 20*time.Second)
	call := func(args ...string) (string, error) {
		return bus.Run("", "busctl", append([]string{"--system", "call", dbusapi.BusName, string(dbusapi.ObjectPath), dbusapi.Interface}, args...)...)
	}
	if out, err := call("Install", "s", "inst-a"); err != nil {
		t.Fatalf("Install: %v %s", err, out)
	}
	if s := pm.MustCLI(t, "inspect", "--format", "{{.State.Status}}", "inst-a"); s != "running" {
		t.Fatalf("inst-a is %s", s)
	}
	if target, err := os.Readlink(filepath.Join(apps, "inst-a.yaml")); err != nil || target != filepath.Join(catalog, "inst-a.yaml") {
		t.Fatalf("apps.d entry: %q %v", target, err)
	}
	dataFile := filepath.Join(state, "apps", "inst-a", "data", "hello")
	for i := 0; i < 50; i++ {
		if _, err := os.Stat(dataFile); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	out, err := call("Install", "s", "inst-bad")
	if err == nil || !strings.Contains(out, "app.container.image") {
		t.Fatalf("Install of a bad manifest: %v %s", err, out)
	}
	out, err = call("Install", "s", "nope")
	if err == nil || !strings.Contains(out, "not in the catalog") {
		t.Fatalf("Install of an unknown app: %v %s", err, out)
	}
	// Remove without purge keeps data; then a purge removes it.
	if out, err := call("Remove", "sb", "inst-a", "false"); err != nil {
		t.Fatalf("Remove: %v %s", err, out)
	}
	if _, err := pm.CLI("inspect", "inst-a"); err == nil {
		t.Fatal("container still there after Remove")
	}
	if _, err := os.Stat(dataFile); err != nil {
		t.Fatalf("Remove without purge lost data: %v", err)
	}
	if _, err := pm.CLI("image", "exists", instImage); err != nil {
		t.Fatalf("Remove without purge removed the image: %v", err)
	}
	if out, err := call("Install", "s", "inst-a"); err != nil {
		t.Fatalf("reinstall: %v %s", err, out)
	}
	if out, err := call("Remove", "sb", "inst-a", "true"); err != nil {
		t.Fatalf("Remove with purge: %v %s", err, out)
	}
	if _, err := os.Stat(filepath.Join(state, "apps", "inst-a")); !os.IsNotExist(err) {
		t.Fatalf("purge left the data dir: %v", err)
	}
	if _, err := pm.CLI("image", "exists", instImage); err == nil {
		t.Fatal("purge left the app's image")
	}
	if _, err := pm.CLI("image", "exists", image); err != nil {
		t.Fatalf("purge removed another tag of the image: %v", err)
	}
	out, err = call("Remove", "sb", "inst-a", "false")
	if err == nil || !strings.Contains(out, "not installed") {
		t.Fatalf("Remove of an app not installed: %v %s", err, out)
	}
	d.Cmd.Process.Signal(syscall.SIGTERM)
	d.Wait(t, 30*time.Second)
}

// TestHTTPSocket: the API socket serves the report, health and metrics, and reconciles for root but
// answers 403 to an unprivileged peer (checked from SO_PEERCRED).
func TestHTTPSocket(t *testing.T) {
	testenv.Need(t, "curl", "setpriv")
	pm := realPodman(t)
	bus := testenv.StartBus(t, testenv.BusConfig{})
	dir, err := os.MkdirTemp("/var/tmp", "lockstep-http-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	os.Chmod(dir, 0o755)
	apps := filepath.Join(dir, "apps.d")
	os.MkdirAll(apps, 0o755)
	writeApp(t, apps, "http-a", fmt.Sprintf("  container:\n    image: %s\n    command: [sleep, '1000']\n    stop_grace_period: 1s\n", image))
	t.Cleanup(func() { pm.CLI("rm", "-f", "-t", "0", "http-a") })
	sock := filepath.Join(dir, "lockstep.sock")
	ns := newNotifySocket(t, dir)
	d := startDaemon(t, []string{"NOTIFY_SOCKET=" + ns.path}, "--bus", bus.Address, "--podman-url", pm.URL(), "--apps-dir", apps,
		"--state-dir", filepath.Join(dir, "state"), "--runtime-dir", filepath.Join(dir, "run"), "--socket", sock, "--systemd-scope", "none",
		"--read-group", "users")
	ns.waitFor(t, "STATUS=idle: 1 apps, 0 failing; pass 1", 20*time.Second)
	fi, err := os.Stat(sock)
	if err != nil || fi.Mode().Perm() != 0o666 {
		t.Fatalf("socket %v %v", fi, err)
	}
	curl := func(user string, args ...string) (string, error) {
		all := append([]string{"-sS", "--unix-socket", sock, "-w", "\n%{http_code}"}, args...)
		var cmd *exec.Cmd
		if user == "nobody+users" {
			// nobody with group users (--read-group) as a real group of the process, which
			// /etc/group does not list: lockstepd goes by the socket's peer groups.
			cmd = exec.Command("setpriv", append([]string{"--reuid=nobody", "--regid=nogroup", "--groups=users", "--", "curl"}, all...)...)
		} else if user != "" {
			cmd = exec.Command("setpriv", append([]string{"--reuid=" + user, "--regid=nogroup", "--init-groups", "--", "curl"}, all...)...)
		} else {
			cmd = exec.Command("curl", all...)
		}
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	out, err := curl("", "http://lockstep/v1/report")
	if err != nil || !strings.HasSuffix(out, "\n200") || !strings.Contains(out, `"pass_id": 1`) {
		t.Fatalf("GET /v1/report: %v %s", err, out)
	}
	out, _ = curl("", "http://lockstep/v1/healthz")
	if !strings.Contains(out, `"status": "ok"`) || !strings.HasSuffix(out, "\n200") {
		t.Fatalf("healthz: %s", out)
	}
	out, _ = curl("", "-X", "POST", "http://lockstep/v1/reconcile")
	if !strings.HasSuffix(out, "\n200") || !strings.Contains(out, `"pass_id": 2`) || !strings.Contains(out, `"trigger": "socket"`) {
		t.Fatalf("POST /v1/reconcile as root: %s", out)
	}
	out, _ = curl("", "http://lockstep/metrics")
	for _, want := range []string{`lockstep_passes_total{trigger="socket"} 1`, `lockstep_actions_total{action="install"} 1`,
		`lockstep_apps{state="running"} 1`, "lockstep_pass_duration_seconds_bucket", "lockstep_last_pass_id 2"} {
		if !strings.Contains(out, want) {
			t.Errorf("metrics lack %s:\n%s", want, out)
		}
	}
	// An unprivileged peer: the daemon refuses it everything, reading included.
	for _, args := range [][]string{{"-X", "POST", "http://lockstep/v1/reconcile"}, {"http://lockstep/v1/report"}, {"http://lockstep/metrics"}} {
		out, _ = curl("nobody", args...)
		if !strings.HasSuffix(out, "\n403") || !strings.Contains(out, "needs root or membership of group") {
			t.Fatalf("%v as nobody: %s", args, out)
		}
	}
	// A member of the read group (by its real groups) reads, and may not reconcile.
	out, _ = curl("nobody+users", "http://lockstep/v1/report")
	if !strings.HasSuffix(out, "\n200") || !strings.Contains(out, `"pass_id": 2`) {
		t.Fatalf("GET /v1/report as a reader: %s", out)
	}
	out, _ = curl("nobody+users", "http://lockstep/metrics")
	if !strings.HasSuffix(out, "\n200") || !strings.Contains(out, "lockstep_last_pass_id 2") {
		t.Fatalf("GET /metrics as a reader: %s", out)
	}
	out, _ = curl("nobody+users", "-X", "POST", "http://lockstep/v1/reconcile")
	if !strings.HasSuffix(out, "\n403") {
		t.Fatalf("POST /v1/reconcile as a reader: %s", out)
	}
	d.Cmd.Process.Signal(syscall.SIGTERM)
	if code := d.Wait(t, 30*time.Second); code != 0 {
		t.Fatalf("exit %d", code)
	}
}

// TestSocketActivation: started by systemd-socket-activate (the tool behind a .socket unit's
// semantics), lockstepd takes the passed listener instead of opening its own socket.
func TestSocketActivation(t *testing.T) {
	testenv.Need(t, "curl", "systemd-socket-activate")
	bus := testenv.StartBus(t, testenv.BusConfig{})
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "apps.d"), 0o755)
	sock := filepath.Join(dir, "activated.sock")
	cmd := exec.Command("systemd-socket-activate", "-l", sock, "-E", "LOCKSTEPD_TEST_MAIN=1", "--", os.Args[0],
		"--bus", bus.Address, "--podman-url", "unix:///nonexistent", "--apps-dir", filepath.Join(dir, "apps.d"),
		"--state-dir", filepath.Join(dir, "state"), "--runtime-dir", filepath.Join(dir, "run"), "--systemd-scope", "none",
		"--socket", filepath.Join(dir, "not-this.sock"))
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Signal(syscall.SIGTERM); cmd.Wait() }()
	var body []byte
	var err error
	for i := 0; i < 100; i++ {
		if _, serr := os.Stat(sock); serr == nil {
			body, err = exec.Command("curl", "-sS", "--max-time", "20", "--unix-socket", sock, "http://lockstep/v1/healthz").CombinedOutput()
			if err == nil {
				break
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil || !strings.Contains(string(body), `"status"`) {
		t.Fatalf("healthz over the activated socket: %v %s\n%s", err, body, out.String())
	}
	if _, err := os.Stat(filepath.Join(dir, "not-this.sock")); err == nil {
		t.Fatal("lockstepd opened its own socket although systemd passed one")
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
