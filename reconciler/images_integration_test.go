package reconciler_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	logtest "github.com/sirupsen/logrus/hooks/test"

	"github.com/lockstep/lockstep/internal/testenv"
	"github.com/lockstep/lockstep/reconciler"
)

// policyReconciler is f's reconciler with a registry policy and a logger whose entries (debug and up)
// the returned hook captures.
func (f *fixture) policyReconciler(pol reconciler.RegistryPolicy) (*reconciler.Reconciler, *logtest.Hook) {
	f.t.Helper()
	log, hook := logtest.NewNullLogger()
	log.SetLevel(logrus.DebugLevel)
	rec, err := reconciler.New(reconciler.Config{
		AppsDir:    f.apps,
		StateDir:   filepath.Join(f.dir, "state"),
		Roots:      rootsOf(f),
		ReachGrace: f.reachGrace,
		Registries: pol,
		Log:        log,
	}, f.client)
	if err != nil {
		f.t.Fatal(err)
	}
	return rec, hook
}

func (f *fixture) imageExists(ref string) bool {
	f.t.Helper()
	ok, err := f.client.ImageExists(context.Background(), ref)
	if err != nil {
		f.t.Fatal(err)
	}
	return ok
}

// TestPullFromRegistryOnlyWhenAllowListed: a real registry on loopback without TLS. The operator's
// allow-list refuses other registries before any request; the manifest's registry.insecure alone does
// not turn TLS verification off; with both it pulls, logging progress.
func TestPullFromRegistryOnlyWhenAllowListed(t *testing.T) {
	f := newFixture(t)
	reg := testenv.StartRegistry(t, f.dir)
	ref := reg.Addr + "/lockstep/busybox:pulled"
	f.pm.MustCLI(t, "push", "--tls-verify=false", bbImage, "docker://"+ref)
	insecure := fmt.Sprintf("  registry:\n    insecure: [\"%s\"]\n", reg.Addr)
	f.app("it-pull", worker(ref)+insecure)

	// Not on the operator's allow-list: refused with the image, the registry and the setting named.
	rec, hook := f.policyReconciler(reconciler.RegistryPolicy{Allowed: []string{"registry.example.org"}})
	r := rec.Pass(context.Background(), "test")
	want := fmt.Sprintf("pulling image %s: registry not allowed: image %s is from registry %s, which lockstepd's --allowed-registries (registry.example.org) does not list", ref, ref, reg.Addr)
	if len(r.Failures) != 1 || r.Failures[0].Error != want {
		t.Fatalf("failures %+v\nwant %s", r.Failures, want)
	}
	if f.imageExists(ref) || f.state("it-pull") != "missing" {
		t.Fatal("pulled or created despite the allow-list")
	}
	for _, e := range hook.AllEntries() {
		if strings.HasPrefix(e.Message, "pull: ") {
			t.Fatalf("a refused pull logged progress: %s", e.Message)
		}
	}

	// Allowed, and insecure in the manifest, but the operator does not allow it insecure: TLS is
	// verified (and fails against this plain-HTTP registry), and the error says why.
	rec, _ = f.policyReconciler(reconciler.RegistryPolicy{Allowed: []string{reg.Addr}})
	r = rec.Pass(context.Background(), "test")
	if len(r.Failures) != 1 || !strings.HasPrefix(r.Failures[0].Error, "pulling image "+ref+": ") ||
		!strings.Contains(r.Failures[0].Error, "is in the manifest's registry.insecure but not in lockstepd's --insecure-registries, so TLS was verified") {
		t.Fatalf("failures %+v", r.Failures)
	}
	if f.imageExists(ref) {
		t.Fatal("pulled without the operator's consent to skip TLS verification")
	}

	// The operator allows it insecure: pulled without TLS verification, progress logged, running.
	rec, hook = f.policyReconciler(reconciler.RegistryPolicy{Allowed: []string{"registry.example.org"}, Insecure: []string{reg.Addr}})
	r = rec.Pass(context.Background(), "test")
	noFailures(t, r)
	if s := f.state("it-pull"); s != "running" {
		t.Fatalf("state %s", s)
	}
	var info, debug []string
	for _, e := range hook.AllEntries() {
		if !strings.HasPrefix(e.Message, "pull: ") {
			continue
		}
		if e.Data["app"] != "it-pull" || e.Data["image"] != ref {
			t.Errorf("progress entry without app and image: %+v", e)
		}
		switch e.Level {
		case logrus.InfoLevel:
			info = append(info, e.Message)
		case logrus.DebugLevel:
			debug = append(debug, e.Message)
		}
	}
	all := strings.Join(append(append([]string{}, info...), debug...), "\n")
	t.Logf("progress at info: %q; at debug: %q", info, debug)
	if len(info) == 0 || !strings.Contains(all, "Copying blob") {
		t.Fatalf("no pull progress logged: info %q debug %q", info, debug)
	}
	// At most one progress line per second at Info, the first at once.
	var pulled *logrus.Entry
	for _, e := range hook.AllEntries() {
		if e.Message == "image pulled" {
			pulled = e
		}
	}
	if pulled == nil {
		t.Fatal("no \"image pulled\" entry")
	}
	if d := pulled.Data["duration"].(time.Duration); len(info) > 1+int(d/time.Second) {
		t.Fatalf("%d progress lines at info in %s", len(info), d)
	}
	if n := pulled.Data["progress_lines"].(int); n != len(info)+len(debug) {
		t.Fatalf("progress_lines %d, logged %d", n, len(info)+len(debug))
	}
}

// importDistinct imports the busybox rootfs as ref, an image of its own (a distinct config, so a
// distinct image id that no other test's container uses).
func (f *fixture) importDistinct(ref string) {
	f.t.Helper()
	tarPath := filepath.Join(f.pm.Dir, "bb.tar")
	if _, err := os.Stat(tarPath); err != nil {
		f.t.Fatal(err)
	}
	f.pm.MustCLI(f.t, "import", "--change", `CMD=["sh"]`, "--change", "LABEL=io.lockstep.test="+ref, tarPath, ref)
}

// TestPurgeRemovesImagesUninstallDoesNot: uninstalling keeps an app's image; purging removes it,
// except where an installed app names it or another container uses it.
func TestPurgeRemovesImagesUninstallDoesNot(t *testing.T) {
	f := newFixture(t)
	n := time.Now().UnixNano()
	own := fmt.Sprintf("localhost/lockstep-test/purge-own:%d", n)
	shared := fmt.Sprintf("localhost/lockstep-test/purge-shared:%d", n)
	foreign := fmt.Sprintf("localhost/lockstep-test/purge-foreign:%d", n)
	for _, ref := range []string{own, shared, foreign} {
		f.importDistinct(ref)
	}
	f.app("it-purge-own", worker(own))
	f.app("it-purge-shared", worker(shared))
	f.app("it-purge-keeper", worker(shared))
	f.app("it-purge-foreign", worker(foreign))
	other := fmt.Sprintf("it-purge-other-%d", n)
	f.names = append(f.names, other)
	f.pm.MustCLI(t, "create", "--name", other, foreign, "sleep", "1000")
	noFailures(t, f.pass())

	for _, id := range []string{"it-purge-own", "it-purge-shared", "it-purge-foreign"} {
		if err := f.rec.Apply(context.Background(), reconciler.Op{Kind: reconciler.OpRemove, App: id}); err != nil {
			t.Fatal(err)
		}
	}
	r := f.pass()
	noFailures(t, r)
	if got := actions(r); got != "it-purge-foreign:remove it-purge-own:remove it-purge-shared:remove" {
		t.Fatalf("actions %q", got)
	}
	// Uninstalled: every image is still there.
	for _, ref := range []string{own, shared, foreign} {
		if !f.imageExists(ref) {
			t.Fatalf("uninstall removed image %s", ref)
		}
	}
	for _, id := range []string{"it-purge-own", "it-purge-shared", "it-purge-foreign"} {
		if err := f.rec.Apply(context.Background(), reconciler.Op{Kind: reconciler.OpPurge, App: id}); err != nil {
			t.Fatalf("purge %s: %v", id, err)
		}
	}
	if f.imageExists(own) {
		t.Fatal("purge kept the app's own image")
	}
	if !f.imageExists(shared) {
		t.Fatal("purge removed an image an installed app uses")
	}
	if !f.imageExists(foreign) {
		t.Fatal("purge removed an image another container uses")
	}
	if s := f.state("it-purge-keeper"); s != "running" {
		t.Fatalf("keeper %s", s)
	}
	// Once the other container is gone, purging again removes the image it held.
	f.pm.MustCLI(t, "rm", "--force", other)
	if err := f.rec.Apply(context.Background(), reconciler.Op{Kind: reconciler.OpPurge, App: "it-purge-foreign"}); err != nil {
		t.Fatal(err)
	}
	if f.imageExists(foreign) {
		t.Fatal("a second purge kept the image no container uses any more")
	}
}

// TestBuildOutputIsLogged: a manifest with a build is built locally, never pulled, even when the
// operator allows no registry at all; the build's steps are logged at Info, its other output at Debug.
func TestBuildOutputIsLogged(t *testing.T) {
	f := newFixture(t)
	ctxDir := filepath.Join(f.apps, "build-log") // beside the manifest: a context is relative to its directory
	mkdirAll(t, ctxDir)
	os.WriteFile(filepath.Join(ctxDir, "Containerfile"), []byte("FROM "+bbImage+"\nRUN echo built-output-marker && echo built-output-marker > /marker\n"), 0o644)
	tag := fmt.Sprintf("localhost/lockstep-test/built-log:%d", time.Now().UnixNano())
	f.app("it-build-log", fmt.Sprintf(`  container:
    build: {context: %s, tag: "%s"}
    command: [sh, -c, 'trap "exit 0" TERM; while :; do sleep 1; done']
`, filepath.Base(ctxDir), tag))
	rec, hook := f.policyReconciler(reconciler.RegistryPolicy{Allowed: []string{"registry.invalid"}})
	noFailures(t, rec.Pass(context.Background(), "test"))
	var steps, debug int
	var marker bool
	for _, e := range hook.AllEntries() {
		if !strings.HasPrefix(e.Message, "build: ") {
			continue
		}
		if e.Data["app"] != "it-build-log" {
			t.Errorf("build entry without app: %+v", e)
		}
		switch {
		case e.Level == logrus.InfoLevel && strings.HasPrefix(e.Message, "build: STEP "):
			steps++
		case e.Level == logrus.DebugLevel:
			debug++
			marker = marker || strings.Contains(e.Message, "built-output-marker")
		}
	}
	if steps != 2 || debug == 0 || !marker {
		t.Fatalf("steps at info %d (want 2), lines at debug %d, RUN's output seen %v", steps, debug, marker)
	}
	if out := f.pm.MustCLI(t, "exec", "it-build-log", "cat", "/marker"); out != "built-output-marker" {
		t.Fatalf("marker %q", out)
	}
}
