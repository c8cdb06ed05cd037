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

	"golang.org/x/sys/unix"

	"github.com/lockstep/lockstep/hostcheck"
	"github.com/lockstep/lockstep/podman"
	"github.com/lockstep/lockstep/test/e2e"
)

const (
	userName = "lsuser"
	userUID  = 4711
)

// asUser runs a command as the test user (home is theirs in this sandbox), with the environment
// its systemd --user session has.
func asUser(home string, name string, args ...string) (string, error) {
	return e2e.User{Name: userName, UID: userUID, Home: home}.Run(name, args...)
}

func mustUser(t *testing.T, home, name string, args ...string) string {
	t.Helper()
	return e2e.User{Name: userName, UID: userUID, Home: home}.Must(t, name, args...)
}

// tunForEveryone gives the sandbox a /dev/net/tun that every user may open (0666, as on a stock
// Debian host), bind-mounted over the host's node in the sandbox's own mount namespace only: this
// host's node is 0600, and rootless podman's slirp4netns fails on it with
// `open("/dev/net/tun"): Permission denied`.
func tunForEveryone(t *testing.T) {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat("/dev/net/tun", &st); err != nil {
		t.Fatalf("no /dev/net/tun: %v", err)
	}
	if st.Mode&0o006 == 0o006 {
		return
	}
	dir := "/run/lockstep-test-dev"
	os.MkdirAll(dir, 0o755)
	sh(t, "mount", "-t", "tmpfs", "-o", "mode=755", "tmpfs", dir)
	if err := unix.Mknod(filepath.Join(dir, "tun"), unix.S_IFCHR|0o666, int(unix.Mkdev(10, 200))); err != nil {
		t.Fatalf("mknod: %v", err)
	}
	os.Chmod(filepath.Join(dir, "tun"), 0o666)
	sh(t, "mount", "--bind", filepath.Join(dir, "tun"), "/dev/net/tun")
	t.Cleanup(func() {
		exec.Command("umount", "/dev/net/tun").Run()
		exec.Command("umount", dir).Run()
	})
}

// TestUserScopeNonRoot installs the .deb and runs lockstepd as a non-root user's systemd --user
// service, as docs/compatibility.md describes: socket activation in the user manager, the session
// bus, rootless podman (its own user-scope podman.socket) and companions in ~/.config. The app
// container runs rootless and serves on its published port. Companions in the user scope need the
// cgroup v2 delegation systemd gives users: on a cgroup v1 host (this one) podman's --cgroups=split
// cannot create the container's cgroup, and the test checks that exact error, so that it notices
// when the host changes.
func TestUserScopeNonRoot(t *testing.T) {
	deb := os.Getenv("LOCKSTEP_DEB")
	if deb == "" {
		t.Fatal("LOCKSTEP_DEB names the package to install (make test-sandbox builds it)")
	}
	tunForEveryone(t)
	sh(t, "dpkg", "-i", deb)
	t.Cleanup(func() { exec.Command("dpkg", "--purge", "lockstep").Run() })

	// A user of its own, with subordinate ids for rootless podman; its home in the sandbox's /run
	// (/home is the host's).
	home := "/run/lockstep-test-home/" + userName
	os.MkdirAll(filepath.Dir(home), 0o755)
	sh(t, "useradd", "--create-home", "--home-dir", home, "--uid", fmt.Sprint(userUID), "--user-group", "--shell", "/bin/sh", userName)
	if b, _ := os.ReadFile("/etc/subuid"); !strings.Contains(string(b), userName+":") {
		os.WriteFile("/etc/subuid", append(b, []byte(userName+":200000:65536\n")...), 0o644)
		b, _ = os.ReadFile("/etc/subgid")
		os.WriteFile("/etc/subgid", append(b, []byte(userName+":200000:65536\n")...), 0o644)
	}
	userUnit := fmt.Sprintf("user@%d.service", userUID)
	sh(t, "systemctl", "start", userUnit)
	t.Cleanup(func() {
		asUser(home, "systemctl", "--user", "stop", "lockstepd.socket", "lockstepd.service", "lockstep-us-web-ui.service")
		asUser(home, "podman", "rm", "--all", "--force", "--time", "0")
		exec.Command("systemctl", "stop", userUnit).Run()
		exec.Command("userdel", "--remove", userName).Run()
	})
	if out := mustUser(t, home, "systemctl", "--user", "is-system-running", "--wait"); out != "running" {
		t.Fatalf("the user's manager: %s", out)
	}
	mustUser(t, home, "podman", "import", "-q", "--change", `CMD=["sh"]`, "/tmp/bb.tar", image)

	// The packaged user units, enabled as the unit file says.
	mustUser(t, home, "systemctl", "--user", "enable", "--now", "lockstepd.socket")
	apps := filepath.Join(home, ".config", "lockstep", "apps.d")
	os.MkdirAll(apps, 0o755)
	y := fmt.Sprintf(`app:
  id: us-web
  name: user-scope web
  version: "1"
  container:
    image: %[1]s
    command: [httpd, -f, -p, "8080", -h, /www]
    ports: ["127.0.0.1:18202:8080"]
    network: bridge
    stop_grace_period: 1s
  companions:
    - id: us-web-ui
      image: %[1]s
      command: [httpd, -f, -p, "8081", -h, /www]
      ports: ["127.0.0.1:18203:8081"]
      stop_grace_period: 1s
`, image)
	os.WriteFile(filepath.Join(apps, "us-web.yaml"), []byte(y), 0o644)
	// An app on its own network (lockstep-APP, the default): rootless podman 4.3.1 here cannot start
	// a container on any network it created (docs/compatibility.md).
	os.WriteFile(filepath.Join(apps, "us-net.yaml"), []byte(fmt.Sprintf("app:\n  id: us-net\n  name: own network\n  version: '1'\n  container:\n    image: %s\n    command: [sleep, '100000']\n    stop_grace_period: 1s\n", image)), 0o644)
	sh(t, "chown", "-R", fmt.Sprintf("%d:%d", userUID, userUID), filepath.Join(home, ".config"))

	// Socket activation: the first request starts lockstepd in the user's manager.
	sock := fmt.Sprintf("/run/user/%d/lockstep/lockstep.sock", userUID)
	out := mustUser(t, home, "curl", "-sS", "--fail", "--max-time", "120", "--unix-socket", sock, "-X", "POST", "http://lockstep/v1/reconcile")
	var r report
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("report: %v\n%s", err, out)
	}
	states := map[string]string{}
	for _, a := range r.Apps {
		states[a.ID] = a.State
	}
	if r.CompanionMode != "quadlet" || states["us-web"] != "running" {
		t.Fatalf("after the first pass: %s", out)
	}
	var netErr string
	for _, f := range r.Failures {
		if f.App == "us-net" {
			netErr = f.Error
		}
	}
	if !strings.Contains(netErr, "unable to find network with name or ID lockstep-us-net: network not found") {
		t.Fatalf("the app on its own network: %q (state %s): if rootless podman runs it now, update docs/compatibility.md and this test", netErr, states["us-net"])
	}
	t.Logf("rootless podman and the app's own network: %s", netErr)
	// The host check on the user's rootless podman: its /info says rootless with the user's
	// subordinate ids mapped (useradd gave them), and uidmap is installed, so lockstepd reports
	// nothing about id mapping.
	facts, err := hostcheck.Probe(context.Background(), podman.New(fmt.Sprintf("unix:///run/user/%d/podman/podman.sock", userUID)), hostcheck.Files{})
	if err != nil || !facts.Rootless || facts.UIDs < 2 {
		t.Fatalf("probing the user's podman: %+v, %v", facts, err)
	}
	t.Logf("the user's podman, as the host check sees it: %+v", facts)
	for _, p := range r.HostProblems {
		if strings.HasPrefix(p.Code, "rootless-") {
			t.Fatalf("host problem %s for the rootless podman: %s", p.Code, out)
		}
	}
	if body, err := try("curl", "-sS", "--max-time", "5", "http://127.0.0.1:18202/"); err != nil || !strings.Contains(body, "hello from busybox") {
		t.Fatalf("the rootless app on its published port: %v %s", err, body)
	}
	// The container is the user's: rootless podman has it, root's podman does not.
	if ps := mustUser(t, home, "podman", "ps", "--format", "{{.Names}}"); !strings.Contains(ps, "us-web\n") && !strings.HasSuffix(ps, "us-web") {
		t.Fatalf("the user's podman lists %q", ps)
	}
	if ps, _ := try("podman", "ps", "-a", "--format", "{{.Names}}"); strings.Contains(ps, "us-web") {
		t.Fatalf("root's podman has the user's container: %q", ps)
	}
	// lockstepctl --user talks to it over the user's session bus.
	status, err := asUser(home, "lockstepctl", "--user", "--color", "never", "status")
	if !strings.Contains(status, "us-web ") || !strings.Contains(status, "running") {
		t.Fatalf("lockstepctl --user status: %v\n%s", err, status)
	}
	if s := mustUser(t, home, "systemctl", "--user", "show", "-p", "ActiveState,ExecMainPID", "lockstepd.service"); !strings.Contains(s, "ActiveState=active") {
		t.Fatalf("lockstepd.service in the user's manager: %s", s)
	}

	// Companions: a unit of the user's manager from the user's Quadlet dir.
	if _, err := os.Stat(filepath.Join(home, ".config", "containers", "systemd", "lockstep-us-web-ui.container")); err != nil {
		t.Fatalf("companion Quadlet file: %v", err)
	}
	var fs unix.Statfs_t
	unix.Statfs("/sys/fs/cgroup", &fs)
	if fs.Type == unix.CGROUP2_SUPER_MAGIC {
		eventually(t, "the companion serving", 30*time.Second, func() bool {
			body, err := try("curl", "-sS", "--max-time", "2", "http://127.0.0.1:18203/")
			return err == nil && strings.Contains(body, "hello from busybox")
		})
		return
	}
	// cgroup v1: systemd delegates no v1 controller to a user, and the unit fails with podman's
	// words, in the journal; the unit never becomes active.
	want := fmt.Sprintf("mkdir /sys/fs/cgroup/pids/user.slice/user-%d.slice/user@%d.service/", userUID, userUID)
	eventually(t, "podman's cgroup error in the journal", 20*time.Second, func() bool {
		j, _ := try("journalctl", "--no-pager", fmt.Sprintf("_UID=%d", userUID), "-t", "lockstep-us-web-ui")
		return strings.Contains(j, want) && strings.Contains(j, "permission denied")
	})
	if s, _ := asUser(home, "systemctl", "--user", "is-active", "lockstep-us-web-ui.service"); s == "active" {
		t.Fatal("the companion is active on a cgroup v1 host: update docs/compatibility.md and this test")
	}
	if body, err := try("curl", "-sS", "--max-time", "2", "http://127.0.0.1:18203/"); err == nil {
		t.Fatalf("the companion serves on a cgroup v1 host: %s", body)
	}
	j, _ := try("journalctl", "--no-pager", fmt.Sprintf("_UID=%d", userUID), "-t", "lockstep-us-web-ui", "-n", "1", "-o", "cat")
	t.Logf("cgroup v1 limit, as podman says it: %s", j)
}

// TestUserScopeRootManager runs the packaged user units in root's own user manager
// (user@0.service), where cgroups are no limit: lockstepd as a user service installs an app through
// the user's podman.socket and runs its companion as a unit of the user manager. Root's home is the
// host's, so a drop-in points lockstepd's dirs into the sandbox: the apps and state under /run, the
// companions in /etc/containers/systemd/users/0 (which the Quadlet user generator reads for uid 0).
func TestUserScopeRootManager(t *testing.T) {
	deb := os.Getenv("LOCKSTEP_DEB")
	if deb == "" {
		t.Fatal("LOCKSTEP_DEB names the package to install (make test-sandbox builds it)")
	}
	sh(t, "dpkg", "-i", deb)
	t.Cleanup(func() { exec.Command("dpkg", "--purge", "lockstep").Run() })
	// One lockstepd per podman storage: the package started the system one, which would remove this
	// test's containers (root's user manager reaches the same podman).
	sh(t, "systemctl", "stop", "lockstep-reconcile.timer", "lockstepd.socket", "lockstepd.service")
	dir := "/run/lockstep-test-rootuser"
	quadletDir := "/etc/containers/systemd/users/0"
	os.MkdirAll(filepath.Join(dir, "apps.d"), 0o755)
	os.MkdirAll(quadletDir, 0o755)
	dropin := "/etc/systemd/user/lockstepd.service.d/test-dirs.conf"
	os.MkdirAll(filepath.Dir(dropin), 0o755)
	os.WriteFile(dropin, []byte(fmt.Sprintf("[Service]\nExecStart=\nExecStart=/usr/bin/lockstepd --bus session --systemd-scope user --podman-url unix://%%t/podman/podman.sock "+
		"--apps-dir %[1]s/apps.d --catalog-dir /usr/share/lockstep/catalog --state-dir %[1]s/state --runtime-dir %%t/lockstep --quadlet-dir %[2]s --unit-dir %%t/systemd/user\n", dir, quadletDir)), 0o644)
	startUserManager(t)
	env := []string{"XDG_RUNTIME_DIR=/run/user/0", "DBUS_SESSION_BUS_ADDRESS=unix:path=/run/user/0/bus"}
	user := func(name string, args ...string) (string, error) {
		cmd := exec.Command(name, args...)
		cmd.Env = append(os.Environ(), env...)
		out, err := cmd.CombinedOutput()
		return strings.TrimSpace(string(out)), err
	}
	must := func(name string, args ...string) string {
		t.Helper()
		out, err := user(name, args...)
		if err != nil {
			t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
		}
		return out
	}
	t.Cleanup(func() {
		user("systemctl", "--user", "stop", "lockstepd.socket", "lockstepd.service", "lockstep-rm-web-ui.service")
		exec.Command("podman", "rm", "-f", "-t", "0", "rm-web", "rm-web-ui").Run()
		os.Remove(filepath.Join(quadletDir, "lockstep-rm-web-ui.container"))
		os.RemoveAll(filepath.Dir(dropin))
		os.RemoveAll(dir)
		user("systemctl", "--user", "daemon-reload")
	})
	must("systemctl", "--user", "daemon-reload")
	// Started, not enabled: enabling writes into root's ~/.config, the host's.
	must("systemctl", "--user", "start", "podman.socket", "lockstepd.socket")
	apps := filepath.Join(dir, "apps.d")
	y := fmt.Sprintf(`app:
  id: rm-web
  name: root user-manager web
  version: "1"
  container:
    image: %[1]s
    command: [httpd, -f, -p, "8080", -h, /www]
    ports: ["127.0.0.1:18211:8080"]
    stop_grace_period: 1s
  companions:
    - id: rm-web-ui
      image: %[1]s
      command: [httpd, -f, -p, "8081", -h, /www]
      ports: ["127.0.0.1:18212:8081"]
      stop_grace_period: 1s
`, image)
	os.WriteFile(filepath.Join(apps, "rm-web.yaml"), []byte(y), 0o644)
	out := must("curl", "-sS", "--fail", "--max-time", "120", "--unix-socket", "/run/user/0/lockstep/lockstep.sock", "-X", "POST", "http://lockstep/v1/reconcile")
	var r report
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("report: %v\n%s", err, out)
	}
	// Root's user manager talks to root's podman, the system lockstepd's too: containers other tests
	// left with lockstep's labels are removed by this lockstepd (docs/compatibility.md).
	var running bool
	for _, a := range r.Apps {
		running = running || (a.ID == "rm-web" && a.State == "running")
	}
	for _, f := range r.Failures {
		if f.App == "rm-web" || f.App == "rm-web-ui" {
			t.Fatalf("failure %s: %s", f.App, f.Error)
		}
	}
	if r.CompanionMode != "quadlet" || !running {
		t.Fatalf("after the first pass: %s", out)
	}
	if _, err := os.Stat(filepath.Join(quadletDir, "lockstep-rm-web-ui.container")); err != nil {
		t.Fatalf("companion Quadlet file: %v", err)
	}
	for _, port := range []int{18211, 18212} {
		eventually(t, fmt.Sprintf("127.0.0.1:%d serving", port), 30*time.Second, func() bool {
			body, err := try("curl", "-sS", "--max-time", "2", fmt.Sprintf("http://127.0.0.1:%d/", port))
			return err == nil && strings.Contains(body, "hello from busybox")
		})
	}
	if s := must("systemctl", "--user", "show", "-p", "ActiveState", "lockstep-rm-web-ui.service"); s != "ActiveState=active" {
		t.Fatalf("the companion in root's user manager: %s", s)
	}
	// A companion stopped by hand in the user manager: lockstepd follows the user manager's signals
	// and starts it again.
	must("systemctl", "--user", "stop", "lockstep-rm-web-ui.service")
	eventually(t, "the stopped companion active again", 20*time.Second, func() bool {
		s, _ := user("systemctl", "--user", "is-active", "lockstep-rm-web-ui.service")
		return s == "active"
	})
	// Started again, the companion is `starting` (status exits 3) until a GET through it answers.
	var status string
	eventually(t, "lockstepctl --user status: all up", 30*time.Second, func() bool {
		var err error
		status, err = user("lockstepctl", "--user", "--color", "never", "status")
		return err == nil
	})
	if !strings.Contains(status, "rm-web-ui") {
		t.Fatalf("lockstepctl --user status:\n%s", status)
	}
}
