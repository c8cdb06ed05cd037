//go:build sandbox

package sandbox

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lockstep/lockstep/internal/testenv"
	"github.com/lockstep/lockstep/manifest"
	"github.com/lockstep/lockstep/podman"
	"github.com/lockstep/lockstep/policy"
	"github.com/lockstep/lockstep/reconciler"
	"github.com/lockstep/lockstep/reconciler/companions"
	lsreport "github.com/lockstep/lockstep/report"
	"github.com/lockstep/lockstep/systemd"
)

const image = "localhost/lockstep-test/busybox:1"

func TestMain(m *testing.M) {
	if os.Getenv("IN_SYSTEMD_HARNESS") != "1" {
		fmt.Fprintln(os.Stderr, "these tests run inside the systemd sandbox: make test-sandbox")
		os.Exit(1)
	}
	data, err := testenv.BusyboxRootfs()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	tar := "/tmp/bb.tar"
	os.WriteFile(tar, data, 0o644)
	if out, err := exec.Command("podman", "import", "-q", "--change", `CMD=["sh"]`, tar, image).CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "podman import: %v %s\n", err, out)
		os.Exit(1)
	}
	os.Exit(m.Run())
}

type env struct {
	t    testing.TB
	dir  string
	apps string
	rec  *reconciler.Reconciler
	sd   *systemd.Client
	cc   *companions.Config
}

func newEnv(t testing.TB, mode string, scope systemd.Scope) *env {
	t.Helper()
	dir := t.TempDir()
	e := &env{t: t, dir: dir, apps: filepath.Join(dir, "apps.d"), sd: systemd.New(scope)}
	t.Cleanup(e.sd.Close)
	os.MkdirAll(e.apps, 0o755)
	wantedBy, qdir, udir := "multi-user.target", "/etc/containers/systemd", "/etc/systemd/system"
	if scope == systemd.User {
		// Directories private to the sandbox (/root is shared with the host): Quadlet's per-uid dir and
		// the user manager's runtime unit dir.
		wantedBy, qdir, udir = "default.target", "/etc/containers/systemd/users/0", "/run/user/0/systemd/user"
	}
	d := qdir
	if mode == companions.ModeService {
		d = udir
	}
	e.cc = &companions.Config{Mode: mode, Dir: d, Generator: systemd.DetectGenerator(scope), WantedBy: wantedBy, Systemd: e.sd}
	rec, err := reconciler.New(reconciler.Config{AppsDir: e.apps, StateDir: filepath.Join(dir, "state"),
		// The tests' companions use the host's network (network: host), and one names a network
		// podman lacks (missing.network, for the generator's message): the operator's policy grants both.
		Roots: manifest.Roots{DataRoot: filepath.Join(dir, "data"),
			Policy: &policy.Policy{AllApps: policy.Grants{HostNetwork: true, Networks: []string{"missing.network"}}}},
		Companions: e.cc}, podman.New("unix:///run/podman/podman.sock"))
	if err != nil {
		t.Fatal(err)
	}
	e.rec = rec
	return e
}

func (e *env) app(id, body string) {
	y := fmt.Sprintf("app:\n  id: %s\n  name: %s\n  version: '1'\n  container:\n    image: %s\n    command: [sleep, '100000']\n    stop_grace_period: 1s\n%s", id, id, image, body)
	if err := os.WriteFile(filepath.Join(e.apps, id+".yaml"), []byte(y), 0o644); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) pass() *lsreport.Report {
	e.t.Helper()
	return e.rec.Pass(context.Background(), "test")
}

func (e *env) state(unit string) systemd.UnitState {
	e.t.Helper()
	s, err := e.sd.State(context.Background(), unit)
	if err != nil {
		e.t.Fatal(err)
	}
	return s
}

func get(url string) string {
	for i := 0; i < 100; i++ {
		resp, err := http.Get(url)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			return string(b)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return ""
}

func noFailures(t *testing.T, r *lsreport.Report) {
	t.Helper()
	if len(r.Failures) > 0 {
		t.Fatalf("failures: %+v", r.Failures)
	}
}

func companionBody(id string, port int, network string) string {
	return fmt.Sprintf(`  companions:
    - id: %s
      image: %s
      command: [httpd, -f, -p, "%d", -h, /www]
      network: %s
      stop_grace_period: 1s
`, id, image, port, network)
}

// startUserManager starts root's user manager (user@0.service) and waits for its private socket.
func startUserManager(t *testing.T) {
	t.Helper()
	c := systemd.New(systemd.System)
	defer c.Close()
	if err := c.Start(context.Background(), "user@0.service"); err != nil {
		t.Fatalf("starting root's user manager: %v", err)
	}
	for i := 0; i < 100; i++ {
		if _, err := os.Stat("/run/user/0/systemd/private"); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatal("user manager socket did not appear")
}

// TestCompanionLifecycle is the whole life of a companion under a real systemd: Quadlet and
// plain-service modes, system scope and root's user scope.
func TestCompanionLifecycle(t *testing.T) {
	os.Setenv("XDG_RUNTIME_DIR", "/run/user/0")
	i := 0
	for _, scope := range []systemd.Scope{systemd.System, systemd.User} {
		for _, mode := range []string{companions.ModeQuadlet, companions.ModeService} {
			i++
			testLifecycle(t, scope, mode, i)
		}
	}
}

func testLifecycle(t *testing.T, scope systemd.Scope, mode string, i int) {
	t.Run(string(scope)+"/"+mode, func(t *testing.T) {
		if scope == systemd.User {
			startUserManager(t)
		}
		{
			e := newEnv(t, mode, scope)
			id, port := fmt.Sprintf("sb-ui-%d", i), 18090+i
			unit := "lockstep-" + id + ".service"
			file := filepath.Join(e.cc.Dir, "lockstep-"+id+map[string]string{"quadlet": ".container", "service": ".service"}[mode])
			appID := fmt.Sprintf("sb-app-%d", i)
			e.app(appID, companionBody(id, port, "host"))
			t.Cleanup(func() { exec.Command("podman", "rm", "-f", "-t", "0", appID, id).Run() })

			// Install: unit written, loaded, active, serving.
			r := e.pass()
			noFailures(t, r)
			if r.CompanionMode != mode {
				t.Fatalf("report companion mode %q", r.CompanionMode)
			}
			if st := e.rec.CompanionStats(); st.Writes != 1 || st.Reloads != 1 {
				t.Fatalf("install stats %+v", st)
			}
			if s := e.state(unit); s.LoadState != "loaded" || s.ActiveState != "active" {
				t.Fatalf("unit %+v", s)
			}
			url := fmt.Sprintf("http://127.0.0.1:%d/", port)
			if body := get(url); !strings.Contains(body, "hello from busybox") {
				t.Fatalf("companion serves %q", body)
			}
			// A no-op pass writes nothing and reloads nothing.
			r = e.pass()
			noFailures(t, r)
			if st := e.rec.CompanionStats(); st != (companions.Stats{}) || len(r.Actions) != 0 {
				t.Fatalf("no-op pass: %+v %+v", st, r.Actions)
			}
			// The unit file vanishes: one pass writes it again and the unit is active.
			os.Remove(file)
			r = e.pass()
			noFailures(t, r)
			if _, err := os.Stat(file); err != nil {
				t.Fatal("unit file not recreated")
			}
			if s := e.state(unit); s.ActiveState != "active" {
				t.Fatalf("after recreate: %+v", s)
			}
			// podman kill: systemd itself restarts it.
			before := e.state(unit).NRestarts
			if out, err := exec.Command("podman", "kill", id).CombinedOutput(); err != nil {
				t.Fatalf("podman kill: %v %s", err, out)
			}
			deadline := time.Now().Add(20 * time.Second)
			for {
				s := e.state(unit)
				if s.NRestarts > before && s.ActiveState == "active" {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("not restarted by systemd: %+v", s)
				}
				time.Sleep(200 * time.Millisecond)
			}
			if body := get(url); !strings.Contains(body, "hello from busybox") {
				t.Fatalf("after restart the companion serves %q", body)
			}
			// systemctl stop: the next pass starts it.
			if err := e.sd.Stop(context.Background(), unit); err != nil {
				t.Fatal(err)
			}
			r = e.pass()
			noFailures(t, r)
			var started bool
			for _, a := range r.Actions {
				started = started || (a.App == id && a.Action == "start-companion")
			}
			if !started || e.state(unit).ActiveState != "active" {
				t.Fatalf("stopped companion not started: %+v", r.Actions)
			}
			// Remove the app: unit stopped, file gone, no container left.
			os.Remove(filepath.Join(e.apps, appID+".yaml"))
			r = e.pass()
			noFailures(t, r)
			if _, err := os.Stat(file); !os.IsNotExist(err) {
				t.Fatal("unit file left after removal")
			}
			if s := e.state(unit); s.ActiveState == "active" || s.LoadState == "loaded" {
				t.Fatalf("unit after removal: %+v", s)
			}
			out, _ := exec.Command("podman", "ps", "-a", "--format", "{{.Names}}").CombinedOutput()
			for _, n := range strings.Fields(string(out)) {
				if n == id || n == appID {
					t.Fatalf("container %s left after removal", n)
				}
			}
		}
	})
}

// TestGeneratorMessageIsReported: a companion the Quadlet generator rejects (a network that names a
// Quadlet unit that does not exist) gets the generator's own words in the report.
func TestGeneratorMessageIsReported(t *testing.T) {
	if systemd.DetectGenerator(systemd.System) == "" {
		t.Fatal("the sandbox has no Quadlet generator: run it with HARNESS_QUADLET")
	}
	e := newEnv(t, companions.ModeQuadlet, systemd.System)
	e.app("sb-bad", companionBody("sb-bad-ui", 18095, "missing.network"))
	t.Cleanup(func() { exec.Command("podman", "rm", "-f", "-t", "0", "sb-bad").Run() })
	r := e.pass()
	var msg string
	for _, f := range r.Failures {
		// A companion's failure is about the companion, for its app.
		if f.App == "sb-bad" && f.Subject == "companion" && f.Name == "sb-bad-ui" {
			msg = f.Error
		}
	}
	if !strings.Contains(msg, "was not generated") || !strings.Contains(msg, "missing.network") {
		t.Fatalf("failure message %q; failures %+v", msg, r.Failures)
	}
	os.Remove(filepath.Join(e.apps, "sb-bad.yaml"))
	e.pass()
}

// A companion's mounts: it waits while the source is missing, then mounts it read-only; its unit's
// TimeoutStopSec outlasts its stop_grace_period (Quadlet, system scope).
func TestCompanionMountsAndStopGrace(t *testing.T) {
	e := newEnv(t, companions.ModeQuadlet, systemd.System)
	id, appID, port := "sb-mnt-ui", "sb-mnt", 18099
	unit := "lockstep-" + id + ".service"
	e.app(appID, fmt.Sprintf(`  companions:
    - id: %s
      image: %s
      command: [sh, -c, 'trap "exit 0" TERM; httpd -f -p %d -h /www & wait']
      network: host
      stop_grace_period: 100s
      mounts: [{from: %s, path: public, target: /www}]
`, id, image, port, appID))
	t.Cleanup(func() { exec.Command("podman", "rm", "-f", "-t", "0", appID, id).Run() })
	r := e.pass()
	public := filepath.Join(e.dir, "data", appID, "public")
	if len(r.Failures) != 1 || r.Failures[0].Error != "waiting for "+public+" (a mount source) to exist" {
		t.Fatalf("failures while the source is missing: %+v", r.Failures)
	}
	if _, err := os.Stat(filepath.Join(e.cc.Dir, "lockstep-"+id+".container")); !os.IsNotExist(err) {
		t.Fatalf("unit written before its mount source exists: %v", err)
	}
	os.MkdirAll(public, 0o755)
	os.WriteFile(filepath.Join(public, "index.html"), []byte("from the app's data\n"), 0o644)
	noFailures(t, e.pass())
	if s := e.state(unit); s.ActiveState != "active" {
		t.Fatalf("unit %+v", s)
	}
	if body := get(fmt.Sprintf("http://127.0.0.1:%d/", port)); body != "from the app's data\n" {
		t.Fatalf("companion serves %q", body)
	}
	if out, err := exec.Command("podman", "exec", id, "sh", "-c", "echo evil > /www/index.html").CombinedOutput(); err == nil {
		t.Fatalf("the companion wrote into the mount: %s", out)
	}
	out, err := exec.Command("systemctl", "show", "-p", "TimeoutStopUSec", unit).Output()
	if err != nil || strings.TrimSpace(string(out)) != "TimeoutStopUSec=2min 10s" {
		t.Fatalf("TimeoutStopUSec: %q %v (want the 100 s grace + 30 s)", out, err)
	}
	// Uninstall: the companion goes first, its app after.
	os.Remove(filepath.Join(e.apps, appID+".yaml"))
	noFailures(t, e.pass())
}

// Issue 16 point 7: a companion (an RTL-like UI in front of its app) is ready only once a GET through
// it answers: "starting", then "unreachable" with the reason, until it serves; and its upstream's
// failure shows on it. Point 10: its unit file deleted and written again identical reloads systemd
// and never restarts it. Quadlet, system scope.
func TestCompanionIsReadyOnlyWhenItServes(t *testing.T) {
	e := newEnv(t, companions.ModeQuadlet, systemd.System)
	id, appID, port := "sb-rtl-ui", "sb-rtl", 18101
	unit := "lockstep-" + id + ".service"
	y := fmt.Sprintf(`app:
  id: %[2]s
  name: RTL
  version: '1'
  container:
    image: %[3]s
    command: [sh, -c, 'echo "lnd unreachable" >&2; exit 1']
    network: host
    restart: on-failure
    stop_grace_period: 1s
  companions:
    - id: %[1]s
      image: %[3]s
      command: [sh, -c, 'sleep 3; mkdir -p /tmp/www; echo ok > /tmp/www/index.html; trap "exit 0" TERM; httpd -f -p %[4]d -h /tmp/www & wait']
      network: host
      ports: ["127.0.0.1:%[4]d:%[4]d"]
      probes: [{port: %[4]d, path: /index.html}]
      stop_grace_period: 1s
`, id, appID, image, port)
	if err := os.WriteFile(filepath.Join(e.apps, appID+".yaml"), []byte(y), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { exec.Command("podman", "rm", "-f", "-t", "0", appID, id).Run() })
	row := func(r *lsreport.Report) (lsreport.AppStatus, []string) {
		var fs []string
		for _, f := range r.Failures {
			if f.App == id {
				fs = append(fs, f.Error)
			}
		}
		for _, c := range r.Companions {
			if c.ID == id {
				return c, fs
			}
		}
		t.Fatalf("no row for %s: %+v", id, r.Companions)
		return lsreport.AppStatus{}, nil
	}
	url := fmt.Sprintf("http://127.0.0.1:%d/index.html", port)
	serves := func() bool {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
		}
		return err == nil && resp.StatusCode == 200
	}
	r := e.pass()
	if c, _ := row(r); c.State != "starting" || serves() {
		t.Fatalf("install pass: %+v (serving: %v)", c, serves())
	}
	sawUnreachable, sawUpstream := false, false
	deadline := time.Now().Add(20 * time.Second)
	for {
		time.Sleep(300 * time.Millisecond)
		r = e.pass()
		c, fs := row(r)
		for _, f := range fs {
			sawUnreachable = sawUnreachable || strings.HasPrefix(f, "running but not serving: GET "+url)
			sawUpstream = sawUpstream || f == "its upstream, app "+appID+", is exited"
		}
		if c.State == "active/running" {
			if !serves() {
				t.Fatal("reported active/running while a GET through it fails")
			}
			break
		}
		if c.State != "unreachable" && c.State != "starting" {
			t.Fatalf("companion %+v", c)
		}
		if time.Now().After(deadline) {
			t.Fatalf("never ready: %+v %v", c, fs)
		}
	}
	if !sawUnreachable {
		t.Fatal("never reported why it was not ready")
	}
	for i := 0; i < 30 && !sawUpstream; i++ { // the app exits at start, then waits out its backoff
		time.Sleep(300 * time.Millisecond)
		_, fs := row(e.pass())
		for _, f := range fs {
			sawUpstream = sawUpstream || f == "its upstream, app "+appID+", is exited"
		}
	}
	if !sawUpstream {
		t.Fatal("the upstream's failure never showed on the companion")
	}
	// The unit file is deleted: written again, one reload, no restart of the companion.
	before := e.state(unit)
	cid, _ := exec.Command("podman", "inspect", "--format", "{{.Id}}", id).Output()
	file := filepath.Join(e.cc.Dir, "lockstep-"+id+".container")
	os.Remove(file)
	r = e.pass()
	for _, a := range r.Actions {
		if a.App == id {
			t.Fatalf("acted on the companion: %+v", a)
		}
	}
	if _, err := os.Stat(file); err != nil {
		t.Fatal("unit file not written again")
	}
	if st := e.rec.CompanionStats(); st.Writes != 1 || st.Reloads != 1 {
		t.Fatalf("stats %+v", st)
	}
	cid2, _ := exec.Command("podman", "inspect", "--format", "{{.Id}}", id).Output()
	if s := e.state(unit); s.ActiveState != "active" || s.NRestarts != before.NRestarts || string(cid) != string(cid2) {
		t.Fatalf("after the rewrite: %+v (before %+v), container %s then %s", s, before, cid, cid2)
	}
	os.Remove(filepath.Join(e.apps, appID+".yaml"))
	e.pass()
}
