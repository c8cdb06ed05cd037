package reconciler_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lockstep/lockstep/engine"
	"github.com/lockstep/lockstep/podman"
	"github.com/lockstep/lockstep/reconciler"
	"github.com/lockstep/lockstep/report"
	"github.com/lockstep/lockstep/spec"
)

// interrupted is the real podman client with two faults of a lockstepd killed mid-install: Create
// makes the container and then fails as the kill would (killAfterCreate), and List misses the
// containers named in hide, as a List does while podman is still creating them for a dead client.
// Everything else (the create that is refused, inspect, remove, start) is real podman.
type interrupted struct {
	*podman.Client
	mu              sync.Mutex
	hide            map[string]bool
	killAfterCreate bool
	creates         int
}

func (p *interrupted) List(ctx context.Context) ([]engine.Container, error) {
	cs, err := p.Client.List(ctx)
	p.mu.Lock()
	defer p.mu.Unlock()
	out := cs[:0]
	for _, c := range cs {
		if !p.hide[c.Name] {
			out = append(out, c)
		}
	}
	return out, err
}

func (p *interrupted) Create(ctx context.Context, r spec.CreateRequest) (string, error) {
	p.mu.Lock()
	p.creates++
	kill := p.killAfterCreate
	p.mu.Unlock()
	id, err := p.Client.Create(ctx, r)
	if err == nil && kill {
		return "", errors.New("connection reset by peer (lockstepd killed)")
	}
	return id, err
}

func (f *fixture) interrupted(hide ...string) (*interrupted, *reconciler.Reconciler) {
	p := &interrupted{Client: podman.New(f.pm.URL()), hide: map[string]bool{}}
	for _, h := range hide {
		p.hide[h] = true
	}
	return p, f.newReconciler(p)
}

func installed(t *testing.T, r *report.Report, app string) {
	t.Helper()
	noFailures(t, r)
	if a := actions(r); a != app+":install" {
		t.Fatalf("actions %q, want %s:install", a, app)
	}
	if len(r.Apps) != 1 || r.Apps[0].State != report.StateRunning {
		t.Fatalf("apps %+v", r.Apps)
	}
}

// The kill lands after podman made the container (state created) and before lockstepd heard of it;
// the next lockstepd's List misses it (still being created) and its create is refused: the pass takes
// the container it finds under the name (labelled for the app, with the spec it wants) and starts it.
func TestNameInUseByInterruptedInstallIsTakenInThePass(t *testing.T) {
	f := newFixture(t)
	f.app("nu-take", worker(bbImage))
	p, rec := f.interrupted()
	p.killAfterCreate = true
	if r := rec.Pass(context.Background(), "test"); len(r.Failures) != 1 {
		t.Fatalf("the interrupted pass: %+v", r.Failures)
	}
	if st := f.state("nu-take"); st != "created" {
		t.Fatalf("container after the interrupted create: %s", st)
	}
	made := f.id("nu-take")

	p, rec = f.interrupted("nu-take")
	r := rec.Pass(context.Background(), "test")
	installed(t, r, "nu-take")
	if r.Apps[0].ContainerID != made || f.id("nu-take") != made || f.state("nu-take") != "running" {
		t.Fatalf("report container %s, podman's %s (%s); want the interrupted install's %s running", r.Apps[0].ContainerID, f.id("nu-take"), f.state("nu-take"), made)
	}
	if p.creates != 1 {
		t.Fatalf("%d creates, want the one that was refused", p.creates)
	}
	if w := rec.NextWake(); !w.IsZero() {
		t.Fatalf("a pass was asked for at %v after the pass converged", w)
	}
}

// A lockstep container of an earlier spec under the name (the manifest changed meanwhile): removed and
// created again in the same pass, data kept.
func TestNameInUseByOldSpecIsReplacedInThePass(t *testing.T) {
	f := newFixture(t)
	f.app("nu-old", worker(bbImage))
	noFailures(t, f.pass())
	old := f.id("nu-old")
	f.app("nu-old", worker(bbImage)+"    env: {MODE: new}\n")
	_, rec := f.interrupted("nu-old")
	r := rec.Pass(context.Background(), "test")
	installed(t, r, "nu-old")
	if now := f.id("nu-old"); now == old || r.Apps[0].ContainerID != now || f.state("nu-old") != "running" {
		t.Fatalf("container %s (was %s, report %s, %s)", now, old, r.Apps[0].ContainerID, f.state("nu-old"))
	}
	if env := f.pm.MustCLI(t, "inspect", "--format", "{{range .Config.Env}}{{println .}}{{end}}", "nu-old"); !strings.Contains(env, "MODE=new") {
		t.Fatalf("env %q", env)
	}
	// The data dir outlived the old container: both starts are in its log.
	var log []byte
	for i := 0; i < 50 && strings.Count(string(log), "started") < 2; i++ {
		time.Sleep(100 * time.Millisecond)
		log, _ = os.ReadFile(filepath.Join(f.data, "nu-old", "data", "log"))
	}
	if n := strings.Count(string(log), "started"); n != 2 {
		t.Fatalf("data log %q: want two starts", log)
	}
}

// A container lockstep did not create under the name: untouched, reported, and a pass asked for
// soon (which sees it in its list and judges its adoption, as for any foreign container).
func TestNameInUseByForeignContainerIsLeftAlone(t *testing.T) {
	f := newFixture(t)
	f.names = append(f.names, "nu-foreign")
	f.pm.MustCLI(t, "create", "--name", "nu-foreign", bbImage, "sleep", "1000")
	fid := f.id("nu-foreign")
	f.app("nu-foreign", worker(bbImage))
	_, rec := f.interrupted("nu-foreign")
	start := time.Now()
	r := rec.Pass(context.Background(), "test")
	if len(r.Failures) != 1 || !strings.Contains(r.Failures[0].Error, "lockstep did not create") {
		t.Fatalf("failures %+v", r.Failures)
	}
	if f.id("nu-foreign") != fid || f.state("nu-foreign") != "created" {
		t.Fatal("the foreign container was touched")
	}
	if w := rec.NextWake(); w.IsZero() || w.Sub(start) > reconciler.NameInUseRetry+10*time.Second {
		t.Fatalf("next pass asked for at %v (pass started %v)", w, start)
	}
	// The next pass lists it and reports the clash as for any foreign container.
	r = f.newReconciler(podman.New(f.pm.URL())).Pass(context.Background(), "test")
	if len(r.Failures) != 1 || !strings.Contains(r.Failures[0].Error, "not created by lockstep") || r.Apps[0].State != report.StateForeign {
		t.Fatalf("next pass: %+v %+v", r.Failures, r.Apps)
	}
}

// podman killed mid-create leaves a storage-only container (podman ps --external): no podman
// container has the name, yet a create with it is refused. With the app's image it is the interrupted
// create's storage: removed and the app installed in the same pass. With another image it may be
// another tool's: left alone and reported.
func TestNameInUseByStorageOnlyContainer(t *testing.T) {
	f := newFixture(t)
	f.names = append(f.names, "nu-storage", "nu-other")
	if _, err := f.pm.CreateStorageOnly("nu-storage", bbImage); err != nil {
		t.Fatal(err)
	}
	f.app("nu-storage", worker(bbImage))
	if _, err := f.pm.CLI("inspect", "nu-storage"); err == nil {
		t.Fatal("podman inspect finds the storage-only container")
	}
	r := f.pass()
	installed(t, r, "nu-storage")
	if f.state("nu-storage") != "running" {
		t.Fatalf("state %s", f.state("nu-storage"))
	}
	if ext := f.pm.MustCLI(t, "ps", "--all", "--external", "--format", "{{.Names}} {{.State}}"); strings.Contains(ext, "nu-storage storage") {
		t.Fatalf("the storage-only container is still there:\n%s", ext)
	}

	const other = "localhost/lockstep-test/other:1"
	f.pm.MustCLI(t, "import", "--change", `CMD=["true"]`, filepath.Join(f.pm.Dir, "bb.tar"), other) // another image id
	t.Cleanup(func() { f.pm.CLI("rmi", "--force", other) })
	sid, err := f.pm.CreateStorageOnly("nu-other", other)
	if err != nil {
		t.Fatal(err)
	}
	f.app("nu-other", worker(bbImage))
	r = f.pass()
	var msg string
	for _, fl := range r.Failures {
		if fl.App == "nu-other" {
			msg = fl.Error
		}
	}
	if !strings.Contains(msg, "storage-only container") || !strings.Contains(msg, "podman rm --storage nu-other") {
		t.Fatalf("failures %+v", r.Failures)
	}
	if ext := f.pm.MustCLI(t, "ps", "--all", "--external", "--format", "{{.ID}} {{.Names}}"); !strings.Contains(ext, fmt.Sprintf("%.12s nu-other", sid)) {
		t.Fatalf("the other image's storage-only container was removed:\n%s", ext)
	}
	f.pm.CLI("rm", "--storage", "nu-other")
}
