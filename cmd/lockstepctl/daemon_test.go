package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"

	"github.com/lockstep/lockstep/dbusapi"
	"github.com/lockstep/lockstep/internal/testenv"
	"github.com/lockstep/lockstep/report"
)

// env is a real lockstepd on a private bus (with the shipped policy) and the shared private podman,
// built by testenv's daemon builder.
type env struct {
	d                         *testenv.Daemon
	bus                       *testenv.Bus
	pm                        *testenv.Podman
	dir, apps, catalog, state string
	conn                      *dbus.Conn
}

func sleeper(extra string) string {
	return fmt.Sprintf("  container:\n    image: %s\n    command: [sleep, '1000']\n    stop_grace_period: 1s\n%s", image, extra)
}

// startEnv starts lockstepd with apps (id → manifest body) installed and catalog (id → body) available,
// and waits for its start-up pass.
func startEnv(t *testing.T, apps, catalog map[string]string) *env {
	t.Helper()
	return startEnvWith(t, apps, catalog, nil)
}

// startEnvWith is startEnv with more environment for lockstepd (NAME=VALUE; PATH replaces).
func startEnvWith(t *testing.T, apps, catalog map[string]string, more []string) *env {
	t.Helper()
	testenv.Need(t, "dbus-daemon")
	pm := realPodman(t)
	bin := built(t, "lockstepd")
	d := testenv.NewDaemon(t, testenv.DaemonConfig{Podman: pm, Catalog: true,
		Bus: testenv.BusConfig{Policies: []string{"../../units/org.lockstep.Reconciler1.conf"}}}, t.TempDir())
	e := &env{d: d, pm: pm, bus: d.Bus, dir: d.Dir, apps: d.Apps, catalog: d.Catalog, state: d.State}
	for id, body := range apps {
		d.WriteApp(t, e.apps, id, body)
	}
	for id, body := range catalog {
		d.WriteApp(t, e.catalog, id, body)
	}
	// Pass ids in the golden files must not depend on when podman or inotify events arrive.
	d.Start(t, bin, more, append(d.Args(), "--log-level", "debug", "--events=false")...)
	t.Cleanup(func() { e.stop(t) }) // before the builder's kill: a clean stop
	var err error
	e.conn, err = dbus.Connect(e.bus.Address)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.conn.Close() })
	// Ready once the start-up pass is done.
	deadline := time.Now().Add(60 * time.Second)
	for {
		v, err := e.conn.Object(dbusapi.BusName, dbusapi.ObjectPath).GetProperty(dbusapi.Interface + ".LastPassId")
		if err == nil && v.Value().(uint64) >= 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("lockstepd did not finish its start-up pass within 60s (%v)", err)
		}
		if d.Done() {
			t.Fatalf("lockstepd exited: %s", d.Logs())
		}
		time.Sleep(50 * time.Millisecond)
	}
	return e
}

// stop sends SIGTERM and waits for lockstepd to exit.
func (e *env) stop(t *testing.T) {
	if !e.d.Stop(30 * time.Second) {
		t.Errorf("lockstepd did not stop within 30s of SIGTERM")
	}
}

// ctl runs lockstepctl against this daemon's bus.
func (e *env) ctl(args ...string) (int, string, string) {
	return runCtl(append([]string{"--bus", e.bus.Address}, args...)...)
}

func (e *env) state_(t *testing.T, name string) string {
	t.Helper()
	out, err := e.pm.CLI("inspect", "--format", "{{.State.Status}}", name)
	if err != nil {
		return "gone"
	}
	return out
}

// normalize makes human output comparable: times, durations, container ids and temp dirs vary.
func normalize(s string, dirs ...string) string {
	for _, d := range dirs {
		s = strings.ReplaceAll(s, d, "<DIR>")
	}
	for _, r := range []struct{ re, with string }{
		{`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(Z|[+-]\d\d:\d\d)`, "<TIME>"},
		{`took [0-9.]+(ns|µs|ms|s|m|h)+`, "took <DUR>"},
		{`finished \d+[smhd] ago`, "finished <AGO> ago"},
		{`(?m) \d+[smhd]$`, " <AGO>"},
		{`\b[0-9a-f]{12}\b`, "<CONTAINER>"},
	} {
		s = regexp.MustCompile(r.re).ReplaceAllString(s, r.with)
	}
	return s
}

// golden compares got with testdata/NAME.golden; go test -update rewrites it.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		os.MkdirAll("testdata", 0o755)
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if string(want) != got {
		t.Errorf("%s differs from the golden file (go test -update rewrites it)\n--- want\n%s\n--- got\n%s", path, want, got)
	}
}

// checkReportJSON checks out against the report schema of docs/cli.md: an object with exactly the
// documented keys, all present, each list a list, decoding strictly into report.Report.
func checkReportJSON(t *testing.T, out string) *report.Report {
	t.Helper()
	checkAgainstDoc(t, "report", out)
	var raw map[string]json.RawMessage
	if err := json.Unmarshal([]byte(out), &raw); err != nil {
		t.Fatalf("not a JSON object: %v\n%s", err, out)
	}
	for _, k := range []string{"pass_id", "trigger", "started_at", "finished_at", "actions", "failures", "apps", "companions"} {
		v, ok := raw[k]
		if !ok {
			t.Fatalf("key %q missing:\n%s", k, out)
		}
		switch k {
		case "actions", "failures", "apps", "companions":
			if !bytes.HasPrefix(v, []byte("[")) {
				t.Fatalf("%s is not a list: %s", k, v)
			}
		}
	}
	dec := json.NewDecoder(strings.NewReader(out))
	dec.DisallowUnknownFields()
	var rep report.Report
	if err := dec.Decode(&rep); err != nil {
		t.Fatalf("does not decode strictly as the documented report: %v\n%s", err, out)
	}
	for _, a := range rep.Apps {
		if a.ID == "" || a.State == "" {
			t.Fatalf("app without id or state: %+v", a)
		}
	}
	return &rep
}

func TestNotRunning(t *testing.T) {
	bus := testenv.StartBus(t, testenv.BusConfig{Policies: []string{"../../units/org.lockstep.Reconciler1.conf"}})
	for _, args := range [][]string{{"status"}, {"report"}, {"reconcile"}, {"watch"}, {"install", "x"}, {"remove", "x"}} {
		code, out, errOut := runCtl(append([]string{"--bus", bus.Address}, args...)...)
		if code != 1 || out != "" || errOut != "lockstepctl: lockstepd is not running; start it with: systemctl start lockstepd.socket\n" {
			t.Errorf("%v: exit %d, stdout %q, stderr %q", args, code, out, errOut)
		}
	}
	// --user: the session bus, and the user's unit.
	t.Setenv("DBUS_SESSION_BUS_ADDRESS", bus.Address)
	code, _, errOut := runCtl("--user", "status")
	if code != 1 || !strings.Contains(errOut, "lockstepd is not running; start it with: systemctl --user start lockstepd.socket") {
		t.Errorf("--user: exit %d, %q", code, errOut)
	}
	// No bus at all.
	t.Setenv("DBUS_SYSTEM_BUS_ADDRESS", "unix:path="+filepath.Join(t.TempDir(), "none"))
	code, _, errOut = runCtl("status")
	if code != 1 || !strings.Contains(errOut, "D-Bus is not running") || !strings.Contains(errOut, "systemctl start dbus") {
		t.Errorf("no system bus: exit %d, %q", code, errOut)
	}
	code, _, errOut = runCtl("--bus", "unix:path=/nonexistent/bus", "status")
	if code != 1 || !strings.Contains(errOut, "D-Bus is not running: nothing listens at unix:path=/nonexistent/bus") {
		t.Errorf("--bus to nothing: exit %d, %q", code, errOut)
	}
	if code, _, errOut := runCtl("--user", "--bus", bus.Address, "status"); code != 1 || !strings.Contains(errOut, "cannot be used together") {
		t.Errorf("--user --bus: exit %d, %q", code, errOut)
	}
}

// TestCommandsAgainstDaemon drives every daemon command through a scenario against a real lockstepd
// and podman, comparing the human formats with golden files and the JSON with the documented schema.
func TestCommandsAgainstDaemon(t *testing.T) {
	e := startEnv(t,
		map[string]string{"ctl-a": sleeper("")},
		map[string]string{
			"ctl-web": sleeper("    volumes: ['${APP_DATA}/data:/data']\n"),
			"ctl-bad": "  container:\n    image: 'NOT VALID'\n",
		})
	norm := func(s string) string { return normalize(s, e.dir) }

	code, out, errOut := e.ctl("status", "--color", "never")
	if code != 0 {
		t.Fatalf("status: exit %d: %s%s", code, out, errOut)
	}
	golden(t, "status", norm(out))

	code, out, _ = e.ctl("report")
	if code != 0 {
		t.Fatalf("report: exit %d", code)
	}
	golden(t, "report", norm(out))
	code, out, _ = e.ctl("report", "--json")
	if code != 0 {
		t.Fatalf("report --json: exit %d", code)
	}
	if rep := checkReportJSON(t, out); rep.PassID != 1 || rep.Trigger != "startup" || len(rep.Actions) != 1 || rep.Apps[0].ContainerID == "" {
		t.Fatalf("report --json: %s", out)
	}

	// install
	code, out, errOut = e.ctl("install", "ctl-web")
	if code != 0 {
		t.Fatalf("install: exit %d: %s%s", code, out, errOut)
	}
	golden(t, "install", norm(out))
	if s := e.state_(t, "ctl-web"); s != "running" {
		t.Fatalf("ctl-web is %s after install", s)
	}
	if code, _, errOut := e.ctl("install", "nope"); code != 1 || !strings.Contains(errOut, "not in the catalog") {
		t.Fatalf("install nope: exit %d, %q", code, errOut)
	}
	if code, _, errOut := e.ctl("install", "ctl-bad"); code != 1 || !strings.Contains(errOut, "app.container.image") {
		t.Fatalf("install ctl-bad: exit %d, %q", code, errOut)
	}

	// plan, offline: nothing to do; then with ctl-a stopped behind lockstep's back, a start.
	planArgs := []string{"plan", "--podman-url", e.pm.URL(), "--apps-dir", e.apps, "--state-dir", e.state}
	code, out, errOut = runCtl(planArgs...)
	if code != 0 {
		t.Fatalf("plan: exit %d: %s", code, errOut)
	}
	golden(t, "plan", norm(out))
	e.pm.MustCLI(t, "stop", "-t", "0", "ctl-a")
	code, out, _ = runCtl(planArgs...)
	if code != 0 {
		t.Fatalf("plan: exit %d", code)
	}
	golden(t, "plan-stopped", norm(out))
	code, out, _ = runCtl(append(planArgs, "--json")...)
	checkAgainstDoc(t, "plan", out)
	var plan planJSON
	dec := json.NewDecoder(strings.NewReader(out))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&plan); err != nil || code != 0 {
		t.Fatalf("plan --json: %v\n%s", err, out)
	}
	if len(plan.Actions) != 2 || plan.Actions[0] != (report.ActionRec{App: "ctl-a", Action: "start", Cause: plan.Actions[0].Cause}) || plan.Actions[1].Action != "none" || plan.Problems == nil {
		t.Fatalf("plan --json: %s", out)
	}
	if s := e.state_(t, "ctl-a"); s != "exited" {
		t.Fatalf("plan changed something: ctl-a is %s", s)
	}

	// reconcile --app: only ctl-a's part of the pass.
	code, out, errOut = e.ctl("reconcile", "--app", "ctl-a")
	if code != 0 {
		t.Fatalf("reconcile --app: exit %d: %s%s", code, out, errOut)
	}
	golden(t, "reconcile-app", norm(out))
	if s := e.state_(t, "ctl-a"); s != "running" {
		t.Fatalf("ctl-a is %s after reconcile", s)
	}
	code, out, _ = e.ctl("reconcile", "--json")
	if rep := checkReportJSON(t, out); code != 0 || len(rep.Actions) != 0 || len(rep.Apps) != 2 {
		t.Fatalf("reconcile --json: exit %d\n%s", code, out)
	}
	code, out, _ = e.ctl("reconcile", "--app", "ctl-web", "--json")
	if rep := checkReportJSON(t, out); code != 0 || len(rep.Apps) != 1 || rep.Apps[0].ID != "ctl-web" {
		t.Fatalf("reconcile --app ctl-web --json: exit %d\n%s", code, out)
	}
	if code, _, errOut := e.ctl("reconcile", "--app", "nope"); code != 1 || !strings.Contains(errOut, `app "nope" is not in the report`) {
		t.Fatalf("reconcile --app nope: exit %d %q", code, errOut)
	}

	// A broken manifest: reconcile and status say degraded, exit 3.
	os.WriteFile(filepath.Join(e.apps, "ctl-broken.yaml"), []byte("app:\n  id: ctl-broken\n  nme: x\n"), 0o644)
	code, out, _ = e.ctl("reconcile")
	if code != 3 {
		t.Fatalf("reconcile with a broken manifest: exit %d\n%s", code, out)
	}
	golden(t, "reconcile-degraded", norm(out))
	code, out, _ = e.ctl("status")
	if code != 3 {
		t.Fatalf("status degraded: exit %d\n%s", code, out)
	}
	golden(t, "status-degraded", norm(out))
	os.Remove(filepath.Join(e.apps, "ctl-broken.yaml"))
	if code, out, _ := e.ctl("reconcile"); code != 0 {
		t.Fatalf("reconcile after the fix: exit %d\n%s", code, out)
	}
	if code, _, _ := e.ctl("status"); code != 0 {
		t.Fatalf("status after the fix: exit %d", code)
	}

	// remove --purge: refused without a terminal or --yes; a wrong answer removes nothing.
	dataDir := filepath.Join(e.state, "apps", "ctl-web")
	if _, err := os.Stat(dataDir); err != nil {
		t.Fatalf("no data dir for ctl-web: %v", err)
	}
	code, _, errOut = e.ctl("remove", "ctl-web", "--purge")
	if code != 1 || !strings.Contains(errOut, "refusing to purge ctl-web without confirmation: stdin is not a terminal; add --yes") {
		t.Fatalf("remove --purge without a terminal: exit %d %q", code, errOut)
	}
	realStdin := stdinIsTerminal
	stdinIsTerminal = func(io.Reader) bool { return true }
	defer func() { stdinIsTerminal = realStdin }()
	code, _, errOut = runCtlIn("ctl-wob\n", "--bus", e.bus.Address, "remove", "ctl-web", "--purge")
	if code != 1 || !strings.Contains(errOut, "Type the app id to confirm: ") || !strings.Contains(errOut, "not confirmed") {
		t.Fatalf("remove --purge, wrong answer: exit %d %q", code, errOut)
	}
	if s := e.state_(t, "ctl-web"); s != "running" {
		t.Fatalf("ctl-web is %s after an unconfirmed purge", s)
	}
	code, out, errOut = runCtlIn("ctl-web\n", "--bus", e.bus.Address, "remove", "ctl-web", "--purge")
	if code != 0 || !strings.Contains(errOut, "ctl-web removed and its data purged") {
		t.Fatalf("remove --purge confirmed: exit %d %q", code, errOut)
	}
	golden(t, "remove", norm(out))
	if s := e.state_(t, "ctl-web"); s != "gone" {
		t.Fatalf("ctl-web is %s after remove", s)
	}
	if _, err := os.Stat(dataDir); !os.IsNotExist(err) {
		t.Fatalf("purge left %s: %v", dataDir, err)
	}
	if code, _, errOut := e.ctl("remove", "ctl-web"); code != 1 || !strings.Contains(errOut, "not installed") {
		t.Fatalf("remove of an app not installed: exit %d %q", code, errOut)
	}
	// --yes skips the question; data is kept without --purge.
	if code, _, errOut := e.ctl("install", "ctl-web"); code != 0 {
		t.Fatalf("reinstall: %d %s", code, errOut)
	}
	stdinIsTerminal = realStdin
	if code, _, errOut := e.ctl("remove", "ctl-web", "--purge", "--yes"); code != 0 || strings.Contains(errOut, "confirm") {
		t.Fatalf("remove --purge --yes: exit %d %q", code, errOut)
	}

	// Status exits 1 once lockstepd is gone.
	e.stop(t)
	if code, _, errOut := e.ctl("status"); code != 1 || !strings.Contains(errOut, "lockstepd is not running") {
		t.Fatalf("status without lockstepd: exit %d %q", code, errOut)
	}
}

// syncBuffer is a buffer written by a command in a goroutine and read by the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func waitFor(t *testing.T, what string, buf *syncBuffer, re *regexp.Regexp) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !re.MatchString(buf.String()) {
		if time.Now().After(deadline) {
			t.Fatalf("no %s (%s) within 30s; output:\n%s", what, re, buf.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestWatch(t *testing.T) {
	e := startEnv(t, nil, map[string]string{"ctl-watched": sleeper("")})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errOut syncBuffer
	codeCh := make(chan int, 1)
	go func() {
		codeCh <- executeContext(ctx, []string{"--bus", e.bus.Address, "watch"}, strings.NewReader(""), &out, &errOut)
	}()
	waitFor(t, "the watching notice", &errOut, regexp.MustCompile(`watching lockstepd on the bus at `))
	if code, _, errs := e.ctl("install", "ctl-watched"); code != 0 {
		t.Fatalf("install: %d %s", code, errs)
	}
	waitFor(t, "a line for the install", &out, regexp.MustCompile(`(?m)^\S+ pass 2 \(install\): 1 action, 0 failures \[ctl-watched:install\]$`))
	// Pass 3 differs from pass 2 (the last actions are gone), pass 4 is the same as 3: no line for it.
	for range 2 {
		if code, _, _ := e.ctl("reconcile"); code != 0 {
			t.Fatal("reconcile failed")
		}
	}
	e.stop(t)
	waitFor(t, "a line for the stop", &out, regexp.MustCompile(`(?m)^\S+ lockstepd stopped; waiting for it to start again$`))
	cancel()
	select {
	case code := <-codeCh:
		if code != 0 {
			t.Fatalf("watch exit %d: %s", code, errOut.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("watch did not end when interrupted")
	}
	golden(t, "watch", normalize(out.String()))
}

func TestUnprivileged(t *testing.T) {
	testenv.Need(t, "setpriv")
	e := startEnv(t, map[string]string{"ctl-priv": sleeper("")}, nil)
	ctl := built(t, "lockstepctl")
	// The report is for root and groups lockstep and lockstep-read (nobody is in neither).
	out, err := e.bus.Run("nobody", ctl, "--bus", e.bus.Address, "status")
	if err == nil || !strings.Contains(out, "Report needs root or membership of group lockstep-read or lockstep") {
		t.Fatalf("status as nobody: %v\n%s", err, out)
	}
	for _, args := range [][]string{{"reconcile"}, {"install", "ctl-priv"}, {"remove", "ctl-priv"}} {
		out, err := e.bus.Run("nobody", ctl, append([]string{"--bus", e.bus.Address}, args...)...)
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || !strings.Contains(out, "lockstepctl: permission denied: run as root or as a member of group lockstep") {
			t.Errorf("%v as nobody: %v\n%s", args, err, out)
		}
	}
	if s := e.state_(t, "ctl-priv"); s != "running" {
		t.Fatalf("ctl-priv is %s", s)
	}
}

func TestStatusColour(t *testing.T) {
	e := startEnv(t, map[string]string{"ctl-colour": sleeper("")}, nil)
	code, out, _ := e.ctl("status", "--color", "always")
	if code != 0 || !strings.Contains(out, "\x1b[32mrunning\x1b[0m") {
		t.Fatalf("--color always: exit %d %q", code, out)
	}
	// Auto: a buffer is not a terminal, so plain.
	if _, out, _ := e.ctl("status"); strings.Contains(out, "\x1b[") {
		t.Fatalf("colour when piped: %q", out)
	}
	// Auto on a terminal: coloured, unless NO_COLOR.
	real := isTerminal
	isTerminal = func(any) bool { return true }
	defer func() { isTerminal = real }()
	if _, out, _ := e.ctl("status"); !strings.Contains(out, "\x1b[32m") {
		t.Fatalf("no colour on a terminal: %q", out)
	}
	t.Setenv("NO_COLOR", "1")
	if _, out, _ := e.ctl("status"); strings.Contains(out, "\x1b[") {
		t.Fatalf("colour despite NO_COLOR: %q", out)
	}
	if code, _, errOut := e.ctl("status", "--color", "sometimes"); code != 1 || !strings.Contains(errOut, "want auto, always or never") {
		t.Fatalf("--color sometimes: %d %q", code, errOut)
	}
}
