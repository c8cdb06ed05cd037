//go:build hosts

package hosts

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lockstep/lockstep/internal/testenv"
	"github.com/lockstep/lockstep/test/e2e"
)

// The demo catalog's image name: the shipped examples are used as they are.
const demoImage = "localhost/lockstep/busybox:demo"

// Where tests keep what a later step (after the reboot) compares with: on the host's disk.
const stateDir = "/var/lib/lockstep-hosts-test"

func TestMain(m *testing.M) {
	if _, err := os.Stat("/mnt/share"); err != nil || os.Getpid() == 1 {
		fmt.Fprintln(os.Stderr, "these tests run inside a fresh test host: make test-hosts")
		os.Exit(1)
	}
	os.Setenv("PODMAN_IGNORE_CGROUPSV1_WARNING", "1")
	os.MkdirAll(stateDir, 0o755)
	os.Exit(m.Run())
}

// The suites' shared helpers (test/e2e), under this file's short names.
var (
	sh        = e2e.Sh
	try       = e2e.Try
	unixDo    = e2e.UnixDo
	httpGet   = e2e.HTTPGet
	getReport = e2e.GetReport
)

type report = e2e.Report

// eventually polls f every half second until it returns "" (done), failing with f's last word after timeout.
func eventually(t *testing.T, what string, timeout time.Duration, f func() string) {
	t.Helper()
	e2e.Eventually(t, what, timeout, 500*time.Millisecond, f)
}

// page waits until url answers 200 with every one of subs in its body.
func page(t *testing.T, what, url string, subs ...string) string {
	t.Helper()
	var body string
	eventually(t, what+" at "+url, 90*time.Second, func() string {
		code, b, err := httpGet(url)
		body = b
		if err != nil || code != 200 {
			return fmt.Sprintf("HTTP %d %v %.300s", code, err, b)
		}
		for _, s := range subs {
			if !strings.Contains(b, s) {
				return fmt.Sprintf("no %q in %.500s", s, b)
			}
		}
		return ""
	})
	return body
}

// importDemoImage makes the demo catalog's image from the host's busybox-static (no registry here).
func importDemoImage(t *testing.T, asUser func(string, ...string) (string, error)) {
	t.Helper()
	data, err := testenv.BusyboxRootfs()
	if err != nil {
		t.Fatal(err)
	}
	tar := "/tmp/lockstep-demo-busybox.tar"
	if err := os.WriteFile(tar, data, 0o644); err != nil {
		t.Fatal(err)
	}
	run := asUser
	if run == nil {
		run = try
	}
	if out, err := run("podman", "import", "-q", "--change", `CMD=["sh"]`, tar, demoImage); err != nil {
		t.Fatalf("podman import: %v %s", err, out)
	}
}

// The demo node's apps, in the order scripts/demo.sh installs them.
var nodeApps = []string{"demo-web", "demo-worker", "demo-built", "bitcoin-knots", "lnd", "electrs", "mempool", "lnd-ui"}

func appsFromEnv() []string {
	if s := os.Getenv("HOSTS_APPS"); s != "" {
		return strings.Fields(s)
	}
	return nodeApps
}

// installDemo installs apps from the package's example catalog with lockstepctl, as the README says.
func installDemo(t *testing.T, apps []string) {
	t.Helper()
	importDemoImage(t, nil)
	sh(t, "sh", "-c", "mkdir -p /usr/share/lockstep/catalog && cp -r /usr/share/lockstep/examples/demo/. /usr/share/lockstep/catalog/")
	os.MkdirAll("/var/lib/lockstep/apps/demo-web/www", 0o755)
	os.WriteFile("/var/lib/lockstep/apps/demo-web/www/index.html", []byte("served by demo-web on a fresh host\n"), 0o644)
	for _, app := range apps {
		out, err := try("lockstepctl", "--color", "never", "install", app)
		if ee, ok := err.(*exec.ExitError); err != nil && !(ok && ee.ExitCode() == 3) {
			t.Fatalf("lockstepctl install %s: %v\n%s", app, err, out)
		}
	}
}

// waitHealthy waits until lockstepctl status says every installed app is healthy (exit 0) and the
// report of a pass started after since has each of apps running, and returns that report.
func waitHealthy(t *testing.T, apps []string, since time.Time, timeout time.Duration) report {
	t.Helper()
	var r report
	eventually(t, "every app healthy", timeout, func() string {
		out, err := try("lockstepctl", "--color", "never", "status")
		if err != nil {
			return fmt.Sprintf("lockstepctl status: %v\n%s", err, out)
		}
		var body string
		r, body = getReport(t, "/run/lockstep/lockstep.sock")
		if r.StartedAt.Before(since) {
			return fmt.Sprintf("the report is of pass %d, started %s, before %s", r.PassID, r.StartedAt, since)
		}
		states := map[string]string{}
		for _, a := range r.Apps {
			states[a.ID] = a.State
		}
		for _, a := range apps {
			if states[a] != "running" {
				return fmt.Sprintf("%s is %q: %.2000s", a, states[a], body)
			}
		}
		return ""
	})
	return r
}

func unitProp(t *testing.T, unit, prop string) string {
	t.Helper()
	return sh(t, "systemctl", "show", "-P", prop, unit)
}

// TestNode: the package's units are enabled and running after the install, the demo node installs
// from the shipped examples and becomes healthy, its pages are served, stack members and dependents
// reach each other by name, and the companions run in the mode this host supports
// (HOSTS_COMPANION_MODE: quadlet or service).
func TestNode(t *testing.T) {
	mode := os.Getenv("HOSTS_COMPANION_MODE")
	if mode == "" {
		t.Fatal("HOSTS_COMPANION_MODE: quadlet or service")
	}
	for _, u := range []string{"lockstepd.socket", "lockstep-reconcile.timer", "dbus.service"} {
		if s := unitProp(t, u, "ActiveState"); s != "active" {
			t.Fatalf("%s after boot: %s", u, s)
		}
	}
	if out, _ := try("systemctl", "list-units", "--failed", "--plain", "--no-legend"); out != "" {
		t.Errorf("failed units on the fresh host: %s", out)
	}
	ver, _ := try("sh", "-c", "podman version --format '{{.Server.Version}}' 2>/dev/null")
	info, _ := try("sh", "-c", "podman info --format 'runtime={{.Host.OCIRuntime.Name}} network={{.Host.NetworkBackend}} cgroups={{.Host.CgroupsVersion}} manager={{.Host.CgroupManager}} storage={{.Store.GraphDriverName}}' 2>/dev/null")
	sd, _ := try("sh", "-c", "systemctl --version | head -1")
	deb, _ := try("cat", "/etc/debian_version")
	t.Logf("host: Debian %s, %s, podman %s %s", deb, sd, ver, info)
	apps := appsFromEnv()
	t0 := time.Now()
	installDemo(t, apps)
	r := waitHealthy(t, apps, t0, 5*time.Minute)
	t.Logf("%d apps healthy %s after the first install", len(apps), time.Since(t0).Round(time.Second))
	if r.CompanionMode != mode {
		t.Errorf("companion mode %q, want %q", r.CompanionMode, mode)
	}
	has := map[string]bool{}
	for _, a := range apps {
		has[a] = true
	}
	// Companions: units of the host's systemd, from the file the mode says.
	var comps []string
	if has["demo-web"] {
		comps = append(comps, "demo-web-ui")
	}
	if has["lnd-ui"] {
		comps = append(comps, "lnd-ui-status")
	}
	for _, c := range comps {
		unit := "lockstep-" + c + ".service"
		file := map[string]string{"quadlet": "/etc/containers/systemd/lockstep-" + c + ".container", "service": "/etc/systemd/system/" + unit}[mode]
		if _, err := os.Stat(file); err != nil {
			t.Errorf("companion %s in %s mode: %v", c, mode, err)
		}
		eventually(t, unit+" active", 60*time.Second, func() string {
			if s := unitProp(t, unit, "ActiveState"); s != "active" {
				return s
			}
			return ""
		})
	}
	if has["demo-web"] {
		page(t, "demo-web", "http://127.0.0.1:18080/", "served by demo-web on a fresh host")
		page(t, "demo-web's companion", "http://127.0.0.1:18081/", "served by demo-web on a fresh host")
		// A companion stopped by hand: lockstepd sees systemd's signal and starts it again.
		sh(t, "systemctl", "stop", "lockstep-demo-web-ui.service")
		eventually(t, "the stopped companion active again", 30*time.Second, func() string {
			return strings.TrimPrefix(unitProp(t, "lockstep-demo-web-ui.service", "ActiveState"), "active")
		})
	}
	if has["bitcoin-knots"] {
		if code, _, err := httpGet("http://127.0.0.1:18332/"); err != nil || code != 401 {
			t.Errorf("bitcoin RPC without credentials: HTTP %d %v (want 401)", code, err)
		}
		pass, err := os.ReadFile("/var/lib/lockstep/secrets/bitcoin-knots/rpc_password")
		if err != nil {
			t.Fatal(err)
		}
		req, _ := http.NewRequest("POST", "http://127.0.0.1:18332/", strings.NewReader(`{"jsonrpc":"1.0","id":"t","method":"getblockchaininfo","params":[]}`))
		req.SetBasicAuth("lockstep", strings.TrimSpace(string(pass)))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(b), `"chain":"regtest"`) {
			t.Errorf("bitcoin RPC with the generated credentials: HTTP %d %s", resp.StatusCode, b)
		}
	}
	if has["lnd"] {
		page(t, "lnd getinfo", "http://127.0.0.1:18380/", `"state":"active"`, `"rpchost":"bitcoin-knots:8332"`)
	}
	if has["electrs"] {
		eventually(t, "electrs answering Electrum RPC", 60*time.Second, func() string {
			conn, err := net.DialTimeout("tcp", "127.0.0.1:18301", 3*time.Second)
			if err != nil {
				return err.Error()
			}
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(5 * time.Second))
			fmt.Fprintln(conn, `{"id":7,"method":"blockchain.headers.subscribe","params":[]}`)
			line, err := bufio.NewReader(conn).ReadString('\n')
			if !regexp.MustCompile(`"height":\d+.*"id":7`).MatchString(line) {
				return fmt.Sprintf("%q %v", line, err)
			}
			return ""
		})
	}
	if has["mempool"] {
		// Names resolve: the api reached bitcoin-knots, electrs and its stack's db by name (netavark's
		// aardvark-dns on the app's network).
		mp := page(t, "mempool web", "http://127.0.0.1:18350/", `"core_rpc":{"host":"bitcoin-knots","port":"8332","user":"lockstep","status":"ok"`,
			`"electrum":{"host":"electrs","port":"50001","height":`, `"database":{"host":"db","address":"`)
		m := regexp.MustCompile(`"database":\{"host":"db","address":"([0-9.]+)"`).FindStringSubmatch(mp)
		if m == nil {
			t.Errorf("mempool api did not resolve db: %s", mp)
		} else if ip := sh(t, "podman", "inspect", "--format", `{{(index .NetworkSettings.Networks "lockstep-mempool").IPAddress}}`, "mempool-db"); ip != m[1] {
			t.Errorf("db resolved to %s, mempool-db is %s", m[1], ip)
		}
	}
	if has["lnd-ui"] {
		page(t, "lnd-ui", "http://127.0.0.1:18370/", "admin.macaroon present", "mounted read-only: yes")
		page(t, "lnd-ui's companion", "http://127.0.0.1:18371/", "admin.macaroon present")
	}
	if has["demo-built"] {
		if s := sh(t, "podman", "inspect", "--format", "{{.State.Status}}", "demo-built"); s != "running" {
			t.Errorf("demo-built (an image built on the host): %s", s)
		}
	}
	// What the reboot step compares with: the apps' containers (labelled io.lockstep.app; companions are
	// not) by name, with their ids.
	containers := map[string]string{}
	for _, l := range strings.Split(sh(t, "podman", "ps", "-a", "--no-trunc", "--filter", "label=io.lockstep.app", "--format", "{{.Names}} {{.ID}}"), "\n") {
		if f := strings.Fields(l); len(f) == 2 {
			containers[f[0]] = f[1]
		}
	}
	b, _ := json.Marshal(map[string]any{"apps": apps, "mode": mode, "containers": containers, "lockstepd_pid": unitProp(t, "lockstepd.service", "MainPID")})
	os.WriteFile(filepath.Join(stateDir, "node.json"), b, 0o644)
}

// hostBoot is when this host's systemd started (the machine's boot time plus PID 1's start).
func hostBoot(t *testing.T) time.Time {
	t.Helper()
	st, err := os.ReadFile("/proc/stat")
	if err != nil {
		t.Fatal(err)
	}
	var btime int64
	for _, l := range strings.Split(string(st), "\n") {
		if f := strings.Fields(l); len(f) == 2 && f[0] == "btime" {
			btime, _ = strconv.ParseInt(f[1], 10, 64)
		}
	}
	p1, err := os.ReadFile("/proc/1/stat")
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(p1[strings.LastIndexByte(string(p1), ')')+1:]))
	ticks, _ := strconv.ParseInt(f[19], 10, 64) // field 22, starttime, in clock ticks (100/s)
	return time.Unix(btime, 0).Add(time.Duration(ticks) * 10 * time.Millisecond)
}

// TestAfterReboot runs after the host was killed (as by a power cut) and booted again on the same
// disk: every container of the node had exited with it; lockstepd, started again by the package's
// timer and socket, brings every app back to healthy, each container started after the boot and
// still the container it was before the reboot (podman reports it created; lockstepd starts it, does
// not recreate it), the apps' data kept.
func TestAfterReboot(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(stateDir, "node.json"))
	if err != nil {
		t.Fatalf("no record of the node before the reboot: %v", err)
	}
	var before struct {
		Apps       []string
		Mode       string
		Containers map[string]string // name -> id
	}
	json.Unmarshal(b, &before)
	boot := hostBoot(t)
	t.Logf("host booted at %s", boot.Format(time.RFC3339))
	// What lockstep says first (the report may still be the one saved before the reboot).
	if r, _ := getReport(t, "/run/lockstep/lockstep.sock"); r.StartedAt.Before(boot) {
		t.Logf("the first report after the boot is of pass %d, started %s, before the boot", r.PassID, r.StartedAt.Format(time.RFC3339))
	}
	t0 := time.Now()
	waitHealthy(t, before.Apps, boot, 5*time.Minute)
	// Every container runs again, started after the boot (none survived it: the host's kernel
	// namespace died with every process in it).
	eventually(t, "every container running, started after the boot", 2*time.Minute, func() string {
		names := strings.Fields(sh(t, "podman", "ps", "-a", "--format", "{{.Names}}"))
		if len(names) < len(before.Apps) {
			return fmt.Sprintf("containers: %v", names)
		}
		for _, n := range names {
			out, err := try("podman", "inspect", "--format", "{{.State.Status}} {{.State.StartedAt.Unix}}", n)
			f := strings.Fields(out)
			if err != nil || len(f) != 2 {
				return fmt.Sprintf("%s: %s %v", n, out, err)
			}
			sec, _ := strconv.ParseInt(f[1], 10, 64)
			if f[0] != "running" || time.Unix(sec, 0).Before(boot.Add(-time.Second)) {
				return fmt.Sprintf("container %s: %s (host booted %d)", n, out, boot.Unix())
			}
		}
		return ""
	})
	if len(before.Containers) == 0 {
		t.Errorf("node.json records no container ids: %s", b)
	}
	for name, id := range before.Containers {
		if now, err := try("podman", "inspect", "--format", "{{.Id}}", name); err != nil || now != id {
			t.Errorf("container %s: %s before the reboot, %s after (%v): recreated, not started", name, id, now, err)
		}
	}
	t.Logf("every app healthy and every container running %s after the test started, %s after the boot", time.Since(t0).Round(time.Second), time.Since(boot).Round(time.Second))
	if ts := unitProp(t, "lockstepd.service", "ActiveState"); ts != "active" {
		t.Errorf("lockstepd.service: %s", ts)
	}
	waitHealthy(t, before.Apps, boot, time.Minute)
	for _, a := range before.Apps {
		if a == "demo-web" {
			page(t, "demo-web after the reboot", "http://127.0.0.1:18080/", "served by demo-web on a fresh host")
			page(t, "its companion after the reboot", "http://127.0.0.1:18081/", "served by demo-web on a fresh host")
		}
		if a == "mempool" {
			page(t, "mempool after the reboot", "http://127.0.0.1:18350/", `"database":{"host":"db","address":"`, `"electrum":{"host":"electrs"`)
		}
		if a == "lnd-ui" {
			page(t, "lnd-ui's companion after the reboot", "http://127.0.0.1:18371/", "admin.macaroon present")
		}
	}
}

const (
	userName = "lsuser"
	userUID  = 4711
)

// testUser is the non-root user of the user-scope tests.
var testUser = e2e.User{Name: userName, UID: userUID, Home: "/home/" + userName}

// asUser runs a command as the test user, with the environment its systemd --user session has.
func asUser(name string, args ...string) (string, error) { return testUser.Run(name, args...) }

func mustUser(t *testing.T, name string, args ...string) string {
	t.Helper()
	return testUser.Must(t, name, args...)
}

// TestUserScope follows docs/compatibility.md's user scope on the fresh host: a real non-root user
// with lingering (logind runs here), the packaged user units enabled by the user, rootless podman
// from the root's packages (newuidmap from uidmap, the user's subordinate ids from useradd), an app
// installed by the user's lockstepd and served on its published port, lockstepctl --user over the
// session bus.
func TestUserScope(t *testing.T) {
	home := "/home/" + userName
	addUser(t)
	// The user's manager goes at the end: on cgroup v1 its companion fails at every start and
	// lockstepd starts it again, at a cost in CPU a later step would pay.
	t.Cleanup(func() {
		asUser("systemctl", "--user", "disable", "--now", "lockstep-reconcile.timer", "lockstepd.socket", "lockstepd.service")
		asUser("systemctl", "--user", "stop", "lockstep-us-web-ui.service")
		asUser("podman", "rm", "--all", "--force", "--time", "0")
		exec.Command("loginctl", "disable-linger", userName).Run()
		exec.Command("systemctl", "stop", fmt.Sprintf("user@%d.service", userUID)).Run()
	})
	importDemoImage(t, asUser)
	mustUser(t, "systemctl", "--user", "enable", "--now", "podman.socket", "lockstepd.socket", "lockstep-reconcile.timer")
	apps := filepath.Join(home, ".config", "lockstep", "apps.d")
	mustUser(t, "mkdir", "-p", apps)
	y := fmt.Sprintf(`app:
  id: us-web
  name: user-scope web
  version: "1"
  container:
    image: %[1]s
    command: [httpd, -f, -p, "8080", -h, /www]
    ports: ["127.0.0.1:18202:8080"]
    volumes: ["${APP_DATA}/www:/www:ro"]
    network: bridge
    stop_grace_period: 1s
  companions:
    - id: us-web-ui
      image: %[1]s
      command: [httpd, -f, -p, "8081", -h, /www]
      ports: ["127.0.0.1:18203:8081"]
      volumes: ["${APP_DATA}/www:/www:ro"]
      stop_grace_period: 1s
`, demoImage)
	os.WriteFile(filepath.Join(apps, "us-web.yaml"), []byte(y), 0o644)
	// An app on its own network (lockstep-APP, the default): docs/compatibility.md says what rootless
	// podman does with it.
	os.WriteFile(filepath.Join(apps, "us-net.yaml"), []byte(fmt.Sprintf("app:\n  id: us-net\n  name: own network\n  version: '1'\n  container:\n    image: %s\n    command: [sleep, '100000']\n    stop_grace_period: 1s\n", demoImage)), 0o644)
	sh(t, "chown", "-R", fmt.Sprintf("%d:%d", userUID, userUID), home)

	// The user asks their lockstepd for a pass over the session bus (the socket or the timer starts
	// it). Root cannot: on systemd 257 the user unit's PrivateTmp= puts lockstepd in a user namespace
	// where root is nobody, and reconcile answers 403.
	reconcile := func() string {
		out, err := asUser("lockstepctl", "--user", "--color", "never", "reconcile")
		if ee, ok := err.(*exec.ExitError); err != nil && !(ok && ee.ExitCode() == 3) {
			return fmt.Sprintf("lockstepctl --user reconcile: %v %s", err, out)
		}
		return ""
	}
	sock := fmt.Sprintf("/run/user/%d/lockstep/lockstep.sock", userUID)
	if _, _, err := unixDo(sock, "GET", "/v1/healthz", 2*time.Minute); err != nil {
		t.Fatalf("the user's lockstepd socket: %v", err)
	}
	if why := reconcile(); why != "" {
		t.Fatal(why)
	}
	var r report
	eventually(t, "us-web running in the user's lockstepd", 2*time.Minute, func() string {
		var body string
		r, body = getReport(t, sock)
		for _, a := range r.Apps {
			if a.ID == "us-web" && a.State == "running" {
				return ""
			}
		}
		if why := reconcile(); why != "" {
			return why
		}
		return body
	})
	// The app's data dir is under the user lockstepd's --state-dir %S/lockstep: ~/.config on
	// systemd 252, ~/.local/state on 257. The page goes where the container's mount says.
	www := mustUser(t, "podman", "inspect", "--format", "{{range .Mounts}}{{if eq .Destination \"/www\"}}{{.Source}}{{end}}{{end}}", "us-web")
	t.Logf("user scope: the app's data is in %s", www)
	if !strings.HasPrefix(www, home+"/") {
		t.Fatalf("the rootless app's data dir %q is not in the user's home", www)
	}
	mustUser(t, "sh", "-c", "echo served rootless > "+www+"/index.html")
	page(t, "the rootless app on its published port", "http://127.0.0.1:18202/", "served rootless")
	if ps := mustUser(t, "podman", "ps", "--format", "{{.Names}}"); !strings.Contains(" "+strings.Join(strings.Fields(ps), " ")+" ", " us-web ") {
		t.Errorf("the user's podman lists %q", ps)
	}
	if ps, _ := try("podman", "ps", "-a", "--format", "{{.Names}}"); strings.Contains(ps, "us-web") {
		t.Errorf("root's podman has the user's container: %q", ps)
	}
	if status, err := asUser("lockstepctl", "--user", "--color", "never", "status"); !strings.Contains(status, "us-web") || !strings.Contains(status, "running") {
		t.Errorf("lockstepctl --user status: %v\n%s", err, status)
	}
	if _, err := os.Stat(filepath.Join(home, ".config", "containers", "systemd", "lockstep-us-web-ui.container")); r.CompanionMode == "quadlet" && err != nil {
		t.Errorf("companion Quadlet file: %v", err)
	}
	// An app on its own network runs rootless on a fresh host (the shared-/usr sandbox could not).
	var netState, netErr string
	for _, a := range r.Apps {
		if a.ID == "us-net" {
			netState = a.State
		}
	}
	for _, f := range r.Failures {
		if f.App == "us-net" {
			netErr = f.Error
		}
	}
	if netState != "running" {
		t.Errorf("the rootless app on its own network: state %q, error %q", netState, netErr)
	}
	if ip := mustUser(t, "podman", "inspect", "--format", "{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}", "us-net"); !strings.Contains(ip, "lockstep-us-net") {
		t.Errorf("us-net's networks: %q", ip)
	}
	// Companions: on cgroup v2 the companion serves; on cgroup v1 (this machine's hybrid mode) systemd
	// delegates no v1 controller to a user and podman says so in the unit's journal.
	var fs unix.Statfs_t
	unix.Statfs("/sys/fs/cgroup", &fs)
	if fs.Type == unix.CGROUP2_SUPER_MAGIC {
		page(t, "the rootless companion", "http://127.0.0.1:18203/", "served rootless")
		return
	}
	want := fmt.Sprintf("mkdir /sys/fs/cgroup/pids/user.slice/user-%d.slice/user@%d.service/", userUID, userUID)
	eventually(t, "podman's cgroup v1 error in the companion's journal", 30*time.Second, func() string {
		j, _ := try("journalctl", "--no-pager", fmt.Sprintf("_UID=%d", userUID), "-t", "lockstep-us-web-ui")
		if strings.Contains(j, want) && strings.Contains(j, "permission denied") {
			return ""
		}
		return j
	})
	if s, _ := asUser("systemctl", "--user", "is-active", "lockstep-us-web-ui.service"); s == "active" {
		t.Error("the rootless companion is active on a cgroup v1 host: update docs/compatibility.md and this test")
	}
	t.Logf("user scope: companion mode %s; the companion stays down on cgroup v1, as docs/compatibility.md says", r.CompanionMode)
}

func pkgVersion(t *testing.T) string {
	t.Helper()
	out, _ := try("dpkg-query", "-W", "-f", "${db:Status-Abbrev} ${Version}", "lockstep")
	return out
}

// TestPackageUpgrade runs on a host where the previous build (HOSTS_OLD_VERSION) was installed by
// apt: an app installed with it keeps running through the upgrade to HOSTS_NEW_DEB (apt-get install
// of the file, as a user upgrades; its dependencies are already there), which restarts lockstepd on
// the new binary and keeps the admin's edit of the conffile.
func TestPackageUpgrade(t *testing.T) {
	oldV, newDeb := os.Getenv("HOSTS_OLD_VERSION"), os.Getenv("HOSTS_NEW_DEB")
	if oldV == "" || newDeb == "" {
		t.Fatal("HOSTS_OLD_VERSION and HOSTS_NEW_DEB: the installed build and the one to upgrade to")
	}
	if v := pkgVersion(t); v != "ii  "+oldV {
		t.Fatalf("installed: %q, want %s", v, oldV)
	}
	installDemo(t, []string{"demo-web"})
	waitHealthy(t, []string{"demo-web"}, time.Now().Add(-time.Minute), 2*time.Minute)
	page(t, "demo-web", "http://127.0.0.1:18080/", "served by demo-web on a fresh host")
	ctrID := sh(t, "podman", "inspect", "--format", "{{.Id}}", "demo-web")
	pid := unitProp(t, "lockstepd.service", "MainPID")
	sh(t, "sh", "-c", "echo '# kept by the upgrade' >> /etc/lockstep/lockstepd.env")

	// Upgrade.
	out := sh(t, "apt-get", "install", "-y", "-q", newDeb)
	t.Logf("upgrade: %s", out[max(0, len(out)-300):])
	newV := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(newDeb), "lockstep_"), "_amd64.deb")
	if v := pkgVersion(t); v != "ii  "+newV {
		t.Fatalf("after the upgrade: %q, want %s", v, newV)
	}
	if p := unitProp(t, "lockstepd.service", "MainPID"); p == pid || p == "0" {
		t.Errorf("lockstepd after the upgrade: MainPID %s (was %s): not restarted on the new binary", p, pid)
	}
	if exe, err := os.Readlink("/proc/" + unitProp(t, "lockstepd.service", "MainPID") + "/exe"); err != nil || exe != "/usr/bin/lockstepd" {
		t.Errorf("lockstepd runs %q (%v), not the upgraded /usr/bin/lockstepd", exe, err)
	}
	for _, u := range []string{"lockstepd.socket", "lockstep-reconcile.timer"} {
		if s := unitProp(t, u, "ActiveState"); s != "active" {
			t.Errorf("%s after the upgrade: %s", u, s)
		}
	}
	if b, _ := os.ReadFile("/etc/lockstep/lockstepd.env"); !strings.Contains(string(b), "# kept by the upgrade") {
		t.Errorf("the upgrade replaced the admin's lockstepd.env:\n%s", b)
	}
	waitHealthy(t, []string{"demo-web"}, time.Now(), 2*time.Minute)
	if id := sh(t, "podman", "inspect", "--format", "{{.Id}}", "demo-web"); id != ctrID {
		t.Errorf("the upgrade recreated demo-web: %s, was %s", id, ctrID)
	}
}

// TestPackageRemovePurge (after TestPackageUpgrade): remove keeps lockstep's state, the conffile and
// the apps' containers and data; purge removes lockstep's own state and conffile and still keeps the
// apps' data.
func TestPackageRemovePurge(t *testing.T) {
	if v := pkgVersion(t); !strings.HasPrefix(v, "ii ") {
		t.Fatalf("lockstep is not installed: %q", v)
	}
	if s, _ := try("podman", "inspect", "--format", "{{.State.Status}}", "demo-web"); s != "running" {
		t.Fatalf("demo-web before remove: %q (TestPackageUpgrade installs it)", s)
	}
	// Remove: lockstep goes, its state, the conffile and the apps stay.
	sh(t, "apt-get", "remove", "-y", "-q", "lockstep")
	if v := pkgVersion(t); !strings.HasPrefix(v, "rc ") {
		t.Errorf("after remove: %q, want rc (config files kept)", v)
	}
	if _, err := os.Stat("/usr/bin/lockstepd"); err == nil {
		t.Error("remove left /usr/bin/lockstepd")
	}
	for _, u := range []string{"lockstepd.service", "lockstepd.socket", "lockstep-reconcile.timer"} {
		if s := unitProp(t, u, "ActiveState"); s == "active" {
			t.Errorf("%s still active after remove", u)
		}
	}
	for _, f := range []string{"/etc/lockstep/lockstepd.env", "/var/lib/lockstep/report.json", "/var/lib/lockstep/apps/demo-web/www/index.html"} {
		if _, err := os.Stat(f); err != nil {
			t.Errorf("remove took %s: %v", f, err)
		}
	}
	if s := sh(t, "podman", "inspect", "--format", "{{.State.Status}}", "demo-web"); s != "running" {
		t.Errorf("demo-web after remove: %s (removing lockstep is not removing its apps)", s)
	}

	// Purge: lockstep's own state and conffile go, app data stays.
	sh(t, "apt-get", "purge", "-y", "-q", "lockstep")
	if v := pkgVersion(t); v != "" && !strings.HasPrefix(v, "un ") && !strings.Contains(v, "no packages found") {
		t.Errorf("after purge: %q", v)
	}
	for _, f := range []string{"/etc/lockstep/lockstepd.env", "/var/lib/lockstep/report.json"} {
		if _, err := os.Stat(f); err == nil {
			t.Errorf("purge left %s", f)
		}
	}
	if b, err := os.ReadFile("/var/lib/lockstep/apps/demo-web/www/index.html"); err != nil || !strings.Contains(string(b), "fresh host") {
		t.Errorf("purge touched the app's data: %v %q", err, b)
	}
}

type hostProblem = e2e.HostProblem

func hostProblems(t *testing.T, sock string) ([]hostProblem, string) {
	t.Helper()
	r, body := getReport(t, sock)
	return r.HostProblems, body
}

// findProgram says where podman or a user would find name: PATH, then podman's helper dirs.
func findProgram(name string) string {
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, d := range []string{"/usr/libexec/podman", "/usr/lib/podman", "/usr/local/libexec/podman", "/usr/local/lib/podman"} {
		if _, err := os.Stat(filepath.Join(d, name)); err == nil {
			return filepath.Join(d, name)
		}
	}
	return ""
}

// TestHostProblems runs after TestNode on a host where the package was installed with
// --no-install-recommends: catatonit (a Recommends) is not there, netavark and aardvark-dns (Depends)
// are. The real lockstepd says so: its report's host_problems has kube-no-catatonit with the package
// that fixes it, no network problem, and lockstepctl status puts it first.
func TestHostProblems(t *testing.T) {
	if p := findProgram("catatonit"); p != "" {
		t.Fatalf("catatonit is at %s: this host has the package's recommends", p)
	}
	for _, p := range []string{"netavark", "aardvark-dns"} {
		if findProgram(p) == "" {
			t.Errorf("%s is missing: the package depends on it", p)
		}
	}
	sh(t, "lockstepctl", "--color", "never", "reconcile")
	probs, body := hostProblems(t, "/run/lockstep/lockstep.sock")
	var kube *hostProblem
	for i, p := range probs {
		switch p.Code {
		case "kube-no-catatonit":
			kube = &probs[i]
		default:
			t.Errorf("host problem %s on a host with the package's dependencies: %s (fix: %s)", p.Code, p.Message, p.Fix)
		}
	}
	if kube == nil {
		t.Fatalf("no kube-no-catatonit in the report: %.3000s", body)
	}
	if !strings.Contains(kube.Fix, "catatonit") || len(kube.Apps) != 0 {
		t.Errorf("kube-no-catatonit: fix %q, apps %v (want the package named, no app affected)", kube.Fix, kube.Apps)
	}
	out, err := try("lockstepctl", "--color", "never", "status")
	if err != nil {
		t.Errorf("lockstepctl status: %v (a problem that affects no app leaves the node healthy)\n%s", err, out)
	}
	first := strings.Index(out, "Host problem (kube-no-catatonit):")
	if first < 0 || !strings.Contains(out[first:], "fix: "+kube.Fix) {
		t.Errorf("lockstepctl status does not headline the problem with its fix:\n%s", out)
	}
	if table := strings.Index(out, "APP"); table >= 0 && first > table {
		t.Errorf("the host problem comes after the table:\n%s", out)
	}
	t.Logf("lockstepctl status:\n%s", out)
}

// addUser makes the test user, with subordinate ids and lingering, and waits for its manager.
func addUser(t *testing.T) {
	t.Helper()
	sh(t, "useradd", "--create-home", "--uid", fmt.Sprint(userUID), "--user-group", "--shell", "/bin/sh", userName)
	if b, _ := os.ReadFile("/etc/subuid"); !strings.Contains(string(b), userName+":") {
		t.Logf("useradd gave %s no subordinate ids: adding them", userName)
		os.WriteFile("/etc/subuid", append(b, []byte(userName+":200000:65536\n")...), 0o644)
		b, _ = os.ReadFile("/etc/subgid")
		os.WriteFile("/etc/subgid", append(b, []byte(userName+":200000:65536\n")...), 0o644)
	}
	sh(t, "loginctl", "enable-linger", userName)
	eventually(t, "the user's manager running", 60*time.Second, func() string {
		out, _ := asUser("systemctl", "--user", "is-system-running")
		if out == "running" || out == "degraded" {
			return ""
		}
		return out
	})
}

// TestUserScopeHostProblems: the user scope on a --no-install-recommends host, which has neither
// dbus-user-session nor uidmap (both Recommends). The user's lockstepd cannot serve without a
// session bus and says which package brings it; given a session bus (started here as
// dbus-user-session would), it reports rootless-no-newuidmap with uidmap as the fix, on every app.
func TestUserScopeHostProblems(t *testing.T) {
	for _, p := range []string{"newuidmap", "newgidmap"} {
		if w := findProgram(p); w != "" {
			t.Fatalf("%s is at %s: this host has uidmap", p, w)
		}
	}
	// Without libpam-systemd (dbus-user-session depends on it) the user's manager gets no
	// XDG_RUNTIME_DIR and fails at once ("Trying to run as user instance, but $XDG_RUNTIME_DIR is
	// not set"): seen on trixie. The test gives it one, as the sandbox does, to reach lockstepd.
	if findPAM("pam_systemd.so") == "" {
		t.Logf("no pam_systemd.so (libpam-systemd): the user's manager is given XDG_RUNTIME_DIR by a drop-in")
		os.MkdirAll("/etc/systemd/system/user@.service.d", 0o755)
		os.WriteFile("/etc/systemd/system/user@.service.d/lockstep-test.conf", []byte("[Service]\nEnvironment=XDG_RUNTIME_DIR=/run/user/%i\n"), 0o644)
		sh(t, "systemctl", "daemon-reload")
		t.Cleanup(func() {
			os.Remove("/etc/systemd/system/user@.service.d/lockstep-test.conf")
			exec.Command("systemctl", "daemon-reload").Run()
		})
	}
	addUser(t)
	t.Cleanup(func() {
		asUser("systemctl", "--user", "disable", "--now", "lockstep-reconcile.timer", "lockstepd.socket", "lockstepd.service", "podman.socket")
		asUser("systemctl", "--user", "stop", "lockstep-test-bus.service")
		exec.Command("loginctl", "disable-linger", userName).Run()
		exec.Command("systemctl", "stop", fmt.Sprintf("user@%d.service", userUID)).Run()
	})
	busSock := fmt.Sprintf("/run/user/%d/bus", userUID)
	if _, err := os.Stat(busSock); err == nil {
		t.Fatalf("%s exists: this host has a session bus (dbus-user-session)", busSock)
	}
	home := "/home/" + userName
	apps := filepath.Join(home, ".config", "lockstep", "apps.d")
	mustUser(t, "mkdir", "-p", apps)
	os.WriteFile(filepath.Join(apps, "us-web.yaml"), []byte(fmt.Sprintf("app:\n  id: us-web\n  name: user-scope web\n  version: '1'\n  container:\n    image: %s\n    command: [httpd, -f, -p, '8080']\n    network: bridge\n    stop_grace_period: 1s\n", demoImage)), 0o644)
	sh(t, "chown", "-R", fmt.Sprintf("%d:%d", userUID, userUID), home)
	mustUser(t, "systemctl", "--user", "enable", "--now", "podman.socket", "lockstepd.socket")
	sock := fmt.Sprintf("/run/user/%d/lockstep/lockstep.sock", userUID)

	// No session bus: a request on the socket starts lockstepd, which stops at once, saying why.
	unixDo(sock, "GET", "/v1/healthz", 10*time.Second)
	eventually(t, "the user's lockstepd failing without a session bus", time.Minute, func() string {
		j, _ := try("journalctl", "--no-pager", "-o", "cat", fmt.Sprintf("_UID=%d", userUID), "_COMM=lockstepd")
		if strings.Contains(j, "connecting to the session bus") && strings.Contains(j, "dbus-user-session") {
			t.Logf("the user's lockstepd without a session bus: %s", lastLine(j, "session bus"))
			return ""
		}
		unixDo(sock, "GET", "/v1/healthz", 5*time.Second)
		return "journal: " + j
	})

	// A session bus as dbus-user-session's user units give one (dbus-daemon is in the dbus package).
	mustUser(t, "systemd-run", "--user", "--unit", "lockstep-test-bus", "--", "dbus-daemon", "--session", "--nofork", "--nopidfile", "--address=unix:path="+busSock)
	eventually(t, "the session bus", 30*time.Second, func() string {
		if _, err := os.Stat(busSock); err != nil {
			return err.Error()
		}
		return ""
	})
	// and in the manager's environment, as dbus-user-session's units put it there
	mustUser(t, "systemctl", "--user", "set-environment", "DBUS_SESSION_BUS_ADDRESS=unix:path="+busSock)
	asUser("systemctl", "--user", "reset-failed", "lockstepd.service", "lockstepd.socket")
	mustUser(t, "systemctl", "--user", "restart", "lockstepd.socket")
	var probs []hostProblem
	var body string
	eventually(t, "rootless-no-newuidmap in the user lockstepd's report", 2*time.Minute, func() string {
		if code, b, err := unixDo(sock, "GET", "/v1/report", 10*time.Second); err != nil || code != 200 {
			return fmt.Sprintf("GET /v1/report: HTTP %d %v %s", code, err, b)
		}
		probs, body = hostProblems(t, sock)
		for _, p := range probs {
			if p.Code == "rootless-no-newuidmap" {
				return ""
			}
		}
		asUser("lockstepctl", "--user", "reconcile")
		return body
	})
	for _, p := range probs {
		if p.Code != "rootless-no-newuidmap" {
			t.Logf("also: %s: %s (fix: %s)", p.Code, p.Message, p.Fix)
			continue
		}
		if !strings.Contains(p.Fix, "uidmap") || !slices.Contains(p.Apps, "us-web") {
			t.Errorf("rootless-no-newuidmap: fix %q, apps %v (want uidmap named, us-web affected)", p.Fix, p.Apps)
		}
	}
	status, _ := asUser("lockstepctl", "--user", "--color", "never", "status")
	if !strings.Contains(status, "Host problem (rootless-no-newuidmap):") || !strings.Contains(status, "uidmap") {
		t.Errorf("lockstepctl --user status does not headline rootless-no-newuidmap:\n%s", status)
	}
	t.Logf("lockstepctl --user status:\n%s", status)
}

// findPAM is where a PAM module is installed, "" when it is not.
func findPAM(name string) string {
	m, _ := filepath.Glob("/usr/lib/*/security/" + name)
	m2, _ := filepath.Glob("/lib/*/security/" + name)
	for _, p := range append(append(m, m2...), "/usr/lib/security/"+name, "/lib/security/"+name) {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return ""
}

func lastLine(s, sub string) string {
	ls := strings.Split(s, "\n")
	for i := len(ls) - 1; i >= 0; i-- {
		if strings.Contains(ls[i], sub) {
			return ls[i]
		}
	}
	return ""
}

// readmeCommands are the commands of the README's "Two commands" block, as written there.
func readmeCommands(t *testing.T, readme string) []string {
	t.Helper()
	b, err := os.ReadFile(readme)
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	i := strings.Index(s, "## Two commands")
	if i < 0 {
		t.Fatalf("%s: no \"## Two commands\" section", readme)
	}
	s = s[i:]
	start := strings.Index(s, "```bash\n")
	end := strings.Index(s[start+8:], "```")
	if start < 0 || end < 0 {
		t.Fatalf("%s: no bash block in \"Two commands\"", readme)
	}
	var cmds []string
	for _, l := range strings.Split(s[start+8:start+8+end], "\n") {
		if c, _, _ := strings.Cut(l, "#"); strings.TrimSpace(c) != "" {
			cmds = append(cmds, strings.TrimSpace(c))
		}
	}
	return cmds
}

// TestReadmeDemo runs the README's first command as written (make demo), as root in a clone of the
// project on a fresh host that holds Debian's base, systemd and what the README's Prerequisites say to
// install (make, git, Debian's golang-go: Go 1.24 on trixie, 1.23 from bookworm-backports on
// bookworm, which fetches the Go 1.26 toolchain go.mod asks for). The host reaches Debian's archive
// and the Go module proxy through hostproxy (HOSTS_PROXY: apt's Acquire::http::Proxy and
// https_proxy, as on a machine behind a proxy) and nothing else. Then the demo node is what
// the README says: every app healthy in lockstepd's report, its pages served, names resolving.
func TestReadmeDemo(t *testing.T) {
	src, proxy := os.Getenv("HOSTS_SRC"), os.Getenv("HOSTS_PROXY")
	if src == "" || proxy == "" {
		t.Fatal("HOSTS_SRC (the checkout, a tar) and HOSTS_PROXY (hostproxy's unix socket)")
	}
	for _, p := range []string{"lockstepd", "podman", "netavark", "busybox"} {
		if w := findProgram(p); w != "" {
			t.Fatalf("%s is at %s before make demo: not a fresh host", p, w)
		}
	}
	goVersion := sh(t, "go", "version")
	t.Logf("before make demo: %s; %s; %s", goVersion, sh(t, "make", "--version")[:20], sh(t, "git", "--version"))
	sh(t, "systemd-run", "--unit", "lockstep-test-proxy", "--", "/mnt/share/hostproxy", "forward", "-listen", "127.0.0.1:3128", "-to", proxy)
	os.WriteFile("/etc/apt/apt.conf.d/99lockstep-test-proxy", []byte("Acquire::http::Proxy \"http://127.0.0.1:3128\";\n"), 0o644)
	// The machine's network may intercept TLS with its own CA (this one does): its machines trust
	// that CA, so this host does too (run.sh copies the machine's /usr/local/share/ca-certificates).
	if cas, _ := filepath.Glob("/mnt/share/*.crt"); len(cas) > 0 {
		for _, c := range cas {
			sh(t, "cp", c, "/usr/local/share/ca-certificates/")
		}
		t.Logf("the machine's own CAs added to the host's trust store: %v (%s)", cas, sh(t, "update-ca-certificates"))
	}
	dir := "/root/lockstep"
	sh(t, "mkdir", "-p", dir)
	sh(t, "tar", "-C", dir, "-xf", src)
	cmds := readmeCommands(t, filepath.Join(dir, "README.md"))
	if len(cmds) != 2 || cmds[0] != "make demo" || cmds[1] != "make test" {
		t.Fatalf("the README's two commands: %q", cmds)
	}
	t0 := time.Now()
	cmd := exec.Command("sh", "-c", cmds[0])
	cmd.Dir = dir
	cmd.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root", "TERM=dumb", "LANG=C.UTF-8",
		"http_proxy=http://127.0.0.1:3128", "https_proxy=http://127.0.0.1:3128"}
	out, err := cmd.CombinedOutput()
	t.Logf("%s (%s):\n%s", cmds[0], time.Since(t0).Round(time.Second), out)
	if err != nil {
		t.Fatalf("%s: %v", cmds[0], err)
	}
	if !strings.Contains(string(out), "PID 1 is systemd: installing on this host") {
		t.Errorf("make demo did not take the booted host's path")
	}
	t.Logf("the Go that built it (go env in %s): %s", dir, mustIn(t, dir, "go", "env", "GOVERSION", "GOTOOLCHAIN"))
	// What make demo left: the node healthy (lockstepctl status exits 0), its pages.
	waitHealthy(t, nodeApps, t0, 2*time.Minute)
	page(t, "demo-web", "http://127.0.0.1:18080/", "served by demo-web, kept in lockstep")
	page(t, "demo-web's companion", "http://127.0.0.1:18081/", "served by demo-web, kept in lockstep")
	page(t, "mempool web", "http://127.0.0.1:18350/", `"core_rpc":{"host":"bitcoin-knots","port":"8332","user":"lockstep","status":"ok"`,
		`"electrum":{"host":"electrs","port":"50001","height":`, `"database":{"host":"db","address":"`)
	page(t, "lnd-ui's companion", "http://127.0.0.1:18371/", "admin.macaroon present")
	if s := sh(t, "dpkg-query", "-W", "-f", "${db:Status-Abbrev}", "lockstep"); s != "ii " {
		t.Errorf("lockstep's package after make demo: %q", s)
	}
}

func mustIn(t *testing.T, dir, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root", "https_proxy=http://127.0.0.1:3128"}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
	return strings.Join(strings.Fields(string(out)), " ")
}
