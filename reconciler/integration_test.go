package reconciler_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lockstep/lockstep/engine"
	"github.com/lockstep/lockstep/internal/testenv"
	"github.com/lockstep/lockstep/manifest"
	"github.com/lockstep/lockstep/podman"
	"github.com/lockstep/lockstep/reconciler"
	"github.com/lockstep/lockstep/report"
	"github.com/lockstep/lockstep/spec"
)

const bbImage = "localhost/lockstep-test/busybox:1"

var shared = testenv.NewShared(func(t testenv.TB) any {
	p := testenv.StartPodman(t)
	p.ImportBusybox(t, bbImage)
	return p
})

func TestMain(m *testing.M) {
	code := m.Run()
	shared.Close()
	os.Exit(code)
}

func realPodman(t *testing.T) *testenv.Podman {
	t.Helper()
	if testing.Short() {
		t.Skip("real podman: not in -short mode")
	}
	return shared.Get(t, "podman", "runc", "busybox").(*testenv.Podman)
}

type fixture struct {
	t      *testing.T
	pm     *testenv.Podman
	dir    string
	apps   string
	data   string
	client *podman.Client
	rec    *reconciler.Reconciler
	names  []string
	// reachGrace for reconcilers made after it is set (0: the default)
	reachGrace time.Duration
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	pm := realPodman(t)
	dir := t.TempDir()
	f := &fixture{t: t, pm: pm, dir: dir, apps: filepath.Join(dir, "apps.d"), data: filepath.Join(dir, "data")}
	os.MkdirAll(f.apps, 0o755)
	f.client = podman.New(pm.URL())
	f.rec = f.newReconciler(f.client)
	t.Cleanup(func() {
		if len(f.names) > 0 {
			pm.CLI(append([]string{"rm", "--force", "--time", "0", "--ignore"}, f.names...)...)
		}
		// This test's app networks (tests may run in parallel: never another's).
		for _, n := range f.names {
			pm.CLI("network", "rm", "--force", f.netPrefix()+n, f.netPrefix()+n+spec.ExportsSuffix)
		}
	})
	return f
}

// netPrefix is this test process's app network prefix: rootful podman services share aardvark-dns's
// state per network name, so concurrent test runs (and packages) must not share names.
func (f *fixture) netPrefix() string { return fmt.Sprintf("lst%d-", os.Getpid()) }

func (f *fixture) newReconciler(p engine.Podman) *reconciler.Reconciler {
	f.t.Helper()
	rec, err := reconciler.New(reconciler.Config{
		AppsDir:       f.apps,
		StateDir:      filepath.Join(f.dir, "state"),
		Roots:         rootsOf(f),
		ReachGrace:    f.reachGrace,
		NetworkPrefix: f.netPrefix(),
	}, p)
	if err != nil {
		f.t.Fatal(err)
	}
	return rec
}

// app writes apps.d/<id>.yaml from the given container and extra YAML.
func (f *fixture) app(id, body string) {
	f.t.Helper()
	for _, n := range f.names {
		if n == id {
			goto write
		}
	}
	f.names = append(f.names, id)
write:
	writeManifest(f.t, f.apps, id, body)
}

func writeManifest(t testing.TB, dir, id, body string) {
	t.Helper()
	y := fmt.Sprintf("app:\n  id: %s\n  name: %s\n  version: 1.0.0\n%s", id, id, body)
	if err := os.WriteFile(filepath.Join(dir, id+".yaml"), []byte(y), 0o644); err != nil {
		t.Fatal(err)
	}
}

func mkdirAll(t testing.TB, dir string) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
}

func rootsOf(f *fixture) manifest.Roots { return manifest.Roots{DataRoot: f.data} }

func worker(image string) string {
	return fmt.Sprintf(`  container:
    image: %s
    command: [sh, -c, 'trap "exit 0" TERM; echo started >> /data/log; while :; do sleep 1; done']
    volumes: ["${APP_DATA}/data:/data"]
    stop_grace_period: 2s
`, image)
}

func (f *fixture) pass() *report.Report {
	f.t.Helper()
	return f.rec.Pass(context.Background(), "test")
}

func (f *fixture) state(name string) string {
	f.t.Helper()
	out, err := f.pm.CLI("inspect", "--format", "{{.State.Status}}", name)
	if err != nil {
		return "missing"
	}
	return out
}

func (f *fixture) id(name string) string {
	f.t.Helper()
	return f.pm.MustCLI(f.t, "inspect", "--format", "{{.Id}}", name)
}

func actions(r *report.Report) string {
	var s []string
	for _, a := range r.Actions {
		s = append(s, a.App+":"+a.Action)
	}
	return strings.Join(s, " ")
}

func noFailures(t *testing.T, r *report.Report) {
	t.Helper()
	if len(r.Failures) > 0 {
		t.Fatalf("unexpected failures: %+v", r.Failures)
	}
}

func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func TestInstallFromNothingThenNoop(t *testing.T) {
	f := newFixture(t)
	port := freePort(t)
	f.app("it-web", fmt.Sprintf(`  container:
    image: %s
    command: [httpd, -f, -p, "8080", -h, /www]
    ports: ["127.0.0.1:%d:8080/tcp"]
    stop_grace_period: 1s
`, bbImage, port))
	f.app("it-worker", worker(bbImage)+"  requires:\n    apps: [it-web]\n")

	r := f.pass()
	noFailures(t, r)
	if got, want := actions(r), "it-web:install it-worker:install"; got != want {
		t.Fatalf("actions = %q, want %q", got, want)
	}
	for _, n := range []string{"it-web", "it-worker"} {
		if s := f.state(n); s != "running" {
			t.Fatalf("%s is %s, want running", n, s)
		}
	}
	for _, a := range r.Apps {
		if a.State != "running" || a.ContainerID == "" || a.Image != bbImage {
			t.Fatalf("app status %+v", a)
		}
	}
	// The published port serves.
	var body string
	for i := 0; i < 50; i++ {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/", port))
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			body = string(b)
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !strings.Contains(body, "hello from busybox") {
		t.Fatalf("port %d served %q", port, body)
	}
	// The worker's data dir was created and written.
	if b, err := os.ReadFile(filepath.Join(f.data, "it-worker", "data", "log")); err != nil || !strings.Contains(string(b), "started") {
		t.Fatalf("worker data: %q, %v", b, err)
	}
	// Labels carry the app, the hash and its scheme.
	lbl := f.pm.MustCLI(t, "inspect", "--format", `{{index .Config.Labels "io.lockstep.app"}} {{index .Config.Labels "io.lockstep.hash-scheme"}}`, "it-web")
	if lbl != "it-web v1" {
		t.Fatalf("labels: %q", lbl)
	}

	// Second pass over installed, running apps: nothing to do, and exactly one podman API request.
	proxy := testenv.StartCountingProxy(t, f.dir, f.pm.Socket)
	counted := podman.New(proxy.URL())
	if err := counted.Connect(context.Background()); err != nil {
		t.Fatal(err)
	}
	rec := f.newReconciler(counted)
	proxy.Reset()
	r2 := rec.Pass(context.Background(), "test")
	noFailures(t, r2)
	if len(r2.Actions) != 0 {
		t.Fatalf("second pass acted: %s", actions(r2))
	}
	if n := proxy.Count(); n != 1 {
		t.Fatalf("no-op pass made %d podman API requests, want exactly 1", n)
	}
	if r2.PassID != r.PassID+1 {
		t.Fatalf("pass ids %d then %d", r.PassID, r2.PassID)
	}
	if report.SameContent(r, r2) {
		t.Fatal("an installing pass and a no-op pass have the same content")
	}
	if r3 := rec.Pass(context.Background(), "test"); !report.SameContent(r2, r3) {
		t.Fatalf("two no-op passes differ in content:\n%+v\n%+v", r2, r3)
	}
}

func TestKilledContainerIsStarted(t *testing.T) {
	f := newFixture(t)
	f.app("it-kill", worker(bbImage))
	noFailures(t, f.pass())
	id := f.id("it-kill")
	f.pm.MustCLI(t, "kill", "it-kill")
	f.pm.MustCLI(t, "wait", "it-kill")
	r := f.pass()
	noFailures(t, r)
	if got := actions(r); got != "it-kill:start" {
		t.Fatalf("actions %q, want it-kill:start", got)
	}
	if s := f.state("it-kill"); s != "running" {
		t.Fatalf("state %s", s)
	}
	if f.id("it-kill") != id {
		t.Fatal("container was replaced; a start should keep it")
	}
}

func TestRemovedContainerIsReinstalled(t *testing.T) {
	f := newFixture(t)
	f.app("it-rm", worker(bbImage))
	noFailures(t, f.pass())
	f.pm.MustCLI(t, "rm", "--force", "--time", "0", "it-rm")
	r := f.pass()
	noFailures(t, r)
	if got := actions(r); got != "it-rm:install" {
		t.Fatalf("actions %q", got)
	}
	if s := f.state("it-rm"); s != "running" {
		t.Fatalf("state %s", s)
	}
}

func TestImageChangeRecreatesAndKeepsData(t *testing.T) {
	f := newFixture(t)
	f.pm.MustCLI(t, "tag", bbImage, "localhost/lockstep-test/busybox:2")
	f.app("it-drift", worker(bbImage))
	noFailures(t, f.pass())
	old := f.id("it-drift")
	marker := filepath.Join(f.data, "it-drift", "data", "precious")
	os.WriteFile(marker, []byte("keep me"), 0o644)

	f.app("it-drift", worker("localhost/lockstep-test/busybox:2"))
	r := f.pass()
	noFailures(t, r)
	if got := actions(r); got != "it-drift:recreate" {
		t.Fatalf("actions %q", got)
	}
	if !strings.Contains(r.Actions[0].Cause, "spec changed") {
		t.Fatalf("cause %q", r.Actions[0].Cause)
	}
	if f.id("it-drift") == old {
		t.Fatal("not recreated")
	}
	img := f.pm.MustCLI(t, "inspect", "--format", "{{.ImageName}}", "it-drift")
	if img != "localhost/lockstep-test/busybox:2" {
		t.Fatalf("image %s", img)
	}
	if b, err := os.ReadFile(marker); err != nil || string(b) != "keep me" {
		t.Fatalf("data lost: %q %v", b, err)
	}
	// The new container sees the kept data.
	out := f.pm.MustCLI(t, "exec", "it-drift", "cat", "/data/precious")
	if out != "keep me" {
		t.Fatalf("container sees %q", out)
	}
	if r := f.pass(); len(r.Actions) != 0 {
		t.Fatalf("pass after recreate acted: %s", actions(r))
	}
}

func TestWedgedContainersAreForceRecreated(t *testing.T) {
	f := newFixture(t)
	f.app("it-paused", worker(bbImage))
	noFailures(t, f.pass())
	f.pm.MustCLI(t, "pause", "it-paused")
	r := f.pass()
	noFailures(t, r)
	if got := actions(r); got != "it-paused:force-recreate" {
		t.Fatalf("actions %q", got)
	}
	if s := f.state("it-paused"); s != "running" {
		t.Fatalf("it-paused: %s", s)
	}
}

// recreateAsCreated replaces lockstep's container name with a container in podman's "created" state
// (as podman's refresh after a reboot leaves every container) that carries the same lockstep labels,
// running cmd; it returns the new container's id.
func recreateAsCreated(t *testing.T, f *fixture, name string, cmd ...string) string {
	t.Helper()
	scheme := f.pm.MustCLI(t, "inspect", "--format", `{{index .Config.Labels "io.lockstep.hash-scheme"}}`, name)
	hash := f.pm.MustCLI(t, "inspect", "--format", `{{index .Config.Labels "io.lockstep.spec-hash"}}`, name)
	f.pm.MustCLI(t, "rm", "--force", "--time", "0", name)
	args := []string{"create", "--name", name, "--label", "io.lockstep.app=" + name,
		"--label", "io.lockstep.hash-scheme=" + scheme, "--label", "io.lockstep.spec-hash=" + hash, bbImage}
	f.pm.MustCLI(t, append(args, cmd...)...)
	if s := f.state(name); s != "created" {
		t.Fatalf("%s: state %q, want created", name, s)
	}
	return f.id(name)
}

func TestCreatedContainerIsStartedAndKept(t *testing.T) {
	f := newFixture(t)
	f.app("it-created", worker(bbImage))
	noFailures(t, f.pass())
	id := recreateAsCreated(t, f, "it-created", "sleep", "1000")
	r := f.pass()
	noFailures(t, r)
	if got := actions(r); got != "it-created:start" {
		t.Fatalf("actions %q", got)
	}
	if f.id("it-created") != id {
		t.Fatal("the created container was replaced, not started")
	}
	if s := f.state("it-created"); s != "running" {
		t.Fatalf("state %s", s)
	}
	if r := f.pass(); len(r.Actions) != 0 {
		t.Fatalf("pass after start acted: %s", actions(r))
	}
}

func TestCreatedContainerThatWillNotStartIsForceRecreated(t *testing.T) {
	f := newFixture(t)
	f.app("it-wedged", worker(bbImage))
	noFailures(t, f.pass())
	// Its command does not exist in the image: podman creates it, but every start fails.
	id := recreateAsCreated(t, f, "it-wedged", "/no/such/entrypoint")
	r := f.pass()
	noFailures(t, r)
	if len(r.Actions) != 1 || r.Actions[0].Action != "start" || !strings.Contains(r.Actions[0].Cause, "start failed") ||
		!strings.Contains(r.Actions[0].Cause, "force-recreated") {
		t.Fatalf("actions %+v", r.Actions)
	}
	if f.id("it-wedged") == id {
		t.Fatal("the wedged container was not replaced")
	}
	if s := f.state("it-wedged"); s != "running" {
		t.Fatalf("state %s", s)
	}
	if len(r.Apps) != 1 || r.Apps[0].ContainerID != f.id("it-wedged") || r.Apps[0].State != report.StateRunning {
		t.Fatalf("apps %+v", r.Apps)
	}
	if r := f.pass(); len(r.Actions) != 0 {
		t.Fatalf("pass after the fallback acted: %s", actions(r))
	}
}

func TestForeignContainerIsLeftAloneOrAdopted(t *testing.T) {
	f := newFixture(t)
	// A foreign container that differs from the manifest: untouched and reported.
	f.names = append(f.names, "it-foreign")
	f.pm.MustCLI(t, "run", "-d", "--name", "it-foreign", bbImage, "sleep", "1000")
	fid := f.id("it-foreign")
	f.app("it-foreign", worker(bbImage))
	r := f.pass()
	if len(r.Failures) != 1 || r.Failures[0].App != "it-foreign" || !strings.Contains(r.Failures[0].Error, "not created by lockstep") {
		t.Fatalf("failures %+v", r.Failures)
	}
	if f.id("it-foreign") != fid || f.state("it-foreign") != "running" {
		t.Fatal("foreign container was touched")
	}
	if r.Apps[0].State != report.StateForeign {
		t.Fatalf("app state %q", r.Apps[0].State)
	}

	// A foreign container that matches the manifest: adopted, and the pass after is a no-op.
	f.names = append(f.names, "it-match")
	f.pm.MustCLI(t, "run", "-d", "--name", "it-match", bbImage, "sh", "-c", "sleep 1000")
	mid := f.id("it-match")
	f.app("it-match", fmt.Sprintf("  container:\n    image: %s\n    command: [sh, -c, sleep 1000]\n", bbImage))
	r = f.pass()
	var adopted bool
	for _, a := range r.Actions {
		adopted = adopted || (a.App == "it-match" && a.Action == "adopt")
	}
	if !adopted {
		t.Fatalf("not adopted: %s %+v", actions(r), r.Failures)
	}
	r = f.pass()
	for _, a := range r.Actions {
		if a.App == "it-match" {
			t.Fatalf("adopted container acted on again: %+v", a)
		}
	}
	if f.id("it-match") != mid {
		t.Fatal("adopted container was replaced")
	}
}

func TestDiskPreflightFailure(t *testing.T) {
	f := newFixture(t)
	f.app("it-disk", worker(bbImage)+"  requires:\n    disk_gb: 1000000000\n")
	r := f.pass()
	if len(r.Failures) != 1 || !strings.HasPrefix(r.Failures[0].Error, filepath.Join(f.apps, "it-disk.yaml")+": app.requires.disk_gb: needs 1000000000 GB free at ") {
		t.Fatalf("failures %+v", r.Failures)
	}
	if s := f.state("it-disk"); s != "missing" {
		t.Fatalf("container created despite failed preflight: %s", s)
	}
}

func TestBadManifestAmongGoodOnes(t *testing.T) {
	f := newFixture(t)
	f.app("it-good", worker(bbImage))
	f.app("it-held", worker(bbImage))
	noFailures(t, f.pass())
	heldID := f.id("it-held")
	// it-held's manifest goes bad; a new bad manifest appears too.
	f.app("it-held", worker(bbImage)+"  requirez: {}\n")
	f.app("it-bad", "  container:\n    image: \"UPPER/case\"\n    ports: [\"99999:80\"]\n")
	f.pm.MustCLI(t, "kill", "it-good")
	r := f.pass()
	if got := actions(r); got != "it-good:start" {
		t.Fatalf("actions %q", got)
	}
	errs := map[string]string{}
	for _, fl := range r.Failures {
		errs[fl.App] += fl.Error + "\n"
	}
	if !strings.Contains(errs["it-held"], "it-held.yaml: app.requirez: unknown key (did you mean \"requires\"?)") {
		t.Fatalf("it-held failure: %q", errs["it-held"])
	}
	if !strings.Contains(errs["it-bad"], "app.container.image") || !strings.Contains(errs["it-bad"], "app.container.ports[0]") {
		t.Fatalf("it-bad failure: %q", errs["it-bad"])
	}
	if f.id("it-held") != heldID || f.state("it-held") != "running" {
		t.Fatal("the app with the invalid manifest was touched")
	}
	states := map[string]string{}
	for _, a := range r.Apps {
		states[a.ID] = a.State
	}
	if states["it-held"] != "invalid" || states["it-bad"] != "invalid" || states["it-good"] != "running" {
		t.Fatalf("states %v", states)
	}
}

func TestUninstallRemovesContainerKeepsData(t *testing.T) {
	f := newFixture(t)
	f.app("it-gone", worker(bbImage))
	noFailures(t, f.pass())
	os.Remove(filepath.Join(f.apps, "it-gone.yaml"))
	r := f.pass()
	noFailures(t, r)
	if got := actions(r); got != "it-gone:remove" {
		t.Fatalf("actions %q", got)
	}
	if s := f.state("it-gone"); s != "missing" {
		t.Fatalf("state %s", s)
	}
	if _, err := os.Stat(filepath.Join(f.data, "it-gone", "data", "log")); err != nil {
		t.Fatalf("data removed: %v", err)
	}
}

func TestPodmanNotRunning(t *testing.T) {
	f := newFixture(t)
	f.app("it-down-a", worker(bbImage))
	f.app("it-down-b", worker(bbImage))
	rec := f.newReconciler(podman.New("unix://" + filepath.Join(f.dir, "nothing-here.sock")))
	r := rec.Pass(context.Background(), "test")
	if len(r.Failures) != 2 {
		t.Fatalf("failures %+v", r.Failures)
	}
	for _, fl := range r.Failures {
		if !strings.Contains(fl.Error, "podman service unavailable") {
			t.Fatalf("unclear error: %q", fl.Error)
		}
	}
	for _, a := range r.Apps {
		if a.State != report.StateUnknown {
			t.Fatalf("state %+v", a)
		}
	}
}

func TestLocalBuild(t *testing.T) {
	f := newFixture(t)
	ctxDir := filepath.Join(f.apps, "build-ctx") // beside the manifest: a context is relative to its directory
	os.MkdirAll(ctxDir, 0o755)
	os.WriteFile(filepath.Join(ctxDir, "Containerfile"), []byte("FROM "+bbImage+"\nCOPY greeting /greeting\n"), 0o644)
	os.WriteFile(filepath.Join(ctxDir, "greeting"), []byte("built here\n"), 0o644)
	tag := fmt.Sprintf("localhost/lockstep-test/built:%d", time.Now().UnixNano())
	f.app("it-built", fmt.Sprintf(`  container:
    build: {context: %s, tag: "%s"}
    command: [sh, -c, 'trap "exit 0" TERM; while :; do sleep 1; done']
`, filepath.Base(ctxDir), tag))
	r := f.pass()
	noFailures(t, r)
	if out := f.pm.MustCLI(t, "exec", "it-built", "cat", "/greeting"); out != "built here" {
		t.Fatalf("greeting %q", out)
	}
	// No buildah working containers are left behind.
	if out := f.pm.MustCLI(t, "ps", "--all", "--external", "--format", "{{.Names}}"); strings.Contains(out, "working-container") {
		t.Fatalf("build left containers: %s", out)
	}
}

// TestRunningButUnreachableIsRepaired: the container runs but its published port stopped answering
// (as after a firewall reload): reported unreachable, then restarted, then serving again.
func TestRunningButUnreachableIsRepaired(t *testing.T) {
	f := newFixture(t)
	f.reachGrace = -1
	f.rec = f.newReconciler(f.client)
	port := freePort(t)
	f.app("it-reach", fmt.Sprintf(`  container:
    image: %s
    command: [sh, -c, 'httpd -p 8080 -h /www; exec sleep 100000']
    ports: ["127.0.0.1:%d:8080/tcp"]
    stop_grace_period: 1s
`, bbImage, port))
	noFailures(t, f.pass())
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	waitHTTP := func() string {
		for i := 0; i < 50; i++ {
			if resp, err := http.Get(url); err == nil {
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				return string(b)
			}
			time.Sleep(100 * time.Millisecond)
		}
		return ""
	}
	if !strings.Contains(waitHTTP(), "hello from busybox") {
		t.Fatal("not serving after install")
	}
	noFailures(t, f.pass())
	// The server inside stops; the container keeps running.
	f.pm.MustCLI(t, "exec", "it-reach", "busybox", "killall", "httpd")
	time.Sleep(300 * time.Millisecond)
	// Within the grace period (default): its own state in the report, a failure, no action yet.
	f.reachGrace = 0
	patient := f.newReconciler(f.client)
	r := patient.Pass(context.Background(), "test")
	if len(r.Actions) != 0 || r.Apps[0].State != report.StateUnreachable || len(r.Failures) != 1 || !strings.Contains(r.Failures[0].Error, "running but unreachable") {
		t.Fatalf("within grace: %+v %+v %+v", r.Actions, r.Apps, r.Failures)
	}
	// Past it: restarted.
	r = f.pass()
	if got := actions(r); got != "it-reach:restart" || !strings.Contains(r.Actions[0].Cause, "running but unreachable: 127.0.0.1:") {
		t.Fatalf("actions %q %+v", got, r.Actions)
	}
	if !strings.Contains(waitHTTP(), "hello from busybox") {
		t.Fatal("not serving after the repair")
	}
	if r := f.pass(); len(r.Actions) != 0 || len(r.Failures) != 0 || r.Apps[0].State != "running" {
		t.Fatalf("after the repair: %+v %+v", r.Actions, r.Apps)
	}
}
