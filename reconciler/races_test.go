package reconciler

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
	"github.com/lockstep/lockstep/report"
	"github.com/lockstep/lockstep/spec"
)

// Races of issue 15 between operations (install, remove, purge) and passes, each decided by the runner
// applying ops in its goroutine. Before it, the ops ran in the D-Bus goroutines.

func startRunner(t *testing.T, r *Reconciler) *Runner {
	t.Helper()
	run := NewRunner(r)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { run.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return run
}

func waitOp(t *testing.T, tk *Ticket) (*report.Report, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	rep, err := tk.Wait(ctx)
	if errors.Is(err, context.DeadlineExceeded) {
		t.Fatal("op not answered within 60 s")
	}
	return rep, err
}

// Two Removes of alternative providers at once: only one succeeds, the other is refused naming the
// app that needs it. Seen on the code before issue 15 (Disable called from two goroutines, as two
// D-Bus calls did): in 47 of 200 rounds both providers were removed.
func TestConcurrentRemovesOfAlternativeProviders(t *testing.T) {
	r := newTestReconciler(t, &fakePodman{Images: map[string]bool{"localhost/x:1": true}}, nil)
	run := startRunner(t, r)
	write := func(id, body string) {
		os.WriteFile(filepath.Join(r.cfg.AppsDir, id+".yaml"), []byte("app:\n  id: "+id+"\n  name: x\n  version: '1'\n  container: {image: 'localhost/x:1'}\n"+body), 0o644)
	}
	for i := 0; i < 50; i++ {
		write("lnd", "  requires: {apps: [bitcoin]}\n")
		write("knots", "  provides: [bitcoin]\n")
		write("core", "  provides: [bitcoin]\n")
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for j, id := range []string{"knots", "core"} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, errs[j] = waitOp(t, run.Submit(Op{Kind: OpRemove, App: id}))
			}()
		}
		wg.Wait()
		ok, refused := 0, 0
		for _, err := range errs {
			switch {
			case err == nil:
				ok++
			case errors.Is(err, ErrNeeded) && strings.Contains(err.Error(), "needed by lnd (requires bitcoin)"):
				refused++
			default:
				t.Fatalf("round %d: %v", i, err)
			}
		}
		if ok != 1 || refused != 1 {
			t.Fatalf("round %d: %d removed, %d refused (%v); want one of each", i, ok, refused, errs)
		}
		for _, id := range []string{"knots", "core"} {
			os.Remove(filepath.Join(r.cfg.AppsDir, id+".yaml"))
		}
	}
}

// bigData fills dir with dirs*files empty files, as a node's blocks.
func bigData(t *testing.T, dir string, dirs, files int) {
	t.Helper()
	for i := 0; i < dirs; i++ {
		d := filepath.Join(dir, "blocks", fmt.Sprintf("%03d", i))
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		for j := 0; j < files; j++ {
			if err := os.WriteFile(filepath.Join(d, fmt.Sprint(j)), nil, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// A purge deleting a large data dir, and a reinstall of the same app queued while it runs: the
// reinstall is applied after the purge, so what the new install writes is kept. Seen on the code
// before issue 15 (Purge in one goroutine, Enable and the pass in another, as D-Bus ran them): 183 of
// the new install's 200 files were deleted by the purge still running.
func TestPurgeRacingReinstallKeepsTheNewData(t *testing.T) {
	p := &fakePodman{Images: map[string]bool{"localhost/web:1": true}}
	r := newTestReconciler(t, p, nil)
	cat := filepath.Join(t.TempDir(), "catalog")
	os.MkdirAll(cat, 0o755)
	r.cfg.CatalogDir = cat
	os.WriteFile(filepath.Join(cat, "web.yaml"), []byte("app:\n  id: web\n  name: Web\n  version: '1'\n  container:\n    image: localhost/web:1\n"), 0o644)
	run := startRunner(t, r)
	data := r.cfg.Roots.AppData("web")
	const dirs = 100
	bigData(t, data, dirs, 100)
	purge := run.Submit(Op{Kind: OpPurge, App: "web"})
	for { // the purge is deleting
		es, err := os.ReadDir(filepath.Join(data, "blocks"))
		if err != nil || len(es) < dirs {
			break
		}
	}
	if _, err := waitOp(t, run.Submit(Op{Kind: OpInstall, App: "web"})); err != nil {
		t.Fatal(err)
	}
	select {
	case <-purge.Done():
	default:
		t.Fatal("the reinstall was answered before the purge queued ahead of it")
	}
	if _, err := purge.Result(); err != nil {
		t.Fatalf("purge: %v", err)
	}
	// The new install writes its blocks.
	for i := 0; i < dirs; i++ {
		d := filepath.Join(data, "blocks", fmt.Sprintf("%03d", i))
		os.MkdirAll(d, 0o755)
		os.WriteFile(filepath.Join(d, "new"), []byte("new install"), 0o600)
	}
	time.Sleep(100 * time.Millisecond)
	lost := 0
	for i := 0; i < dirs; i++ {
		if _, err := os.Stat(filepath.Join(data, "blocks", fmt.Sprintf("%03d", i), "new")); err != nil {
			lost++
		}
	}
	if lost > 0 {
		t.Fatalf("%d of the new install's %d files are gone", lost, dirs)
	}
	// And a purge queued behind an install of the same app is refused: the app is installed.
	_, err := waitOp(t, run.Submit(Op{Kind: OpPurge, App: "web"}))
	if err == nil || !strings.Contains(err.Error(), "still installed") {
		t.Fatalf("purge of an installed app: %v", err)
	}
}

// A purge is refused while podman shows a container of the app, or cannot be asked.
func TestPurgeChecksLiveContainers(t *testing.T) {
	p := &fakePodman{Images: map[string]bool{}}
	r := newTestReconciler(t, p, nil)
	data := r.cfg.Roots.AppData("web")
	os.MkdirAll(data, 0o755)
	p.Containers = []engine.Container{{ID: "c1", Name: "web", State: "exited", Labels: map[string]string{spec.LabelApp: "web"}}}
	if err := r.Apply(context.Background(), Op{Kind: OpPurge, App: "web"}); err == nil || !strings.Contains(err.Error(), "its container web is still there (exited)") {
		t.Fatalf("purge with a container left: %v", err)
	}
	p.Containers, p.ListErr = nil, &engine.APIError{Op: "listing", Err: engine.ErrUnavailable}
	if err := r.Apply(context.Background(), Op{Kind: OpPurge, App: "web"}); err == nil || !strings.Contains(err.Error(), "cannot tell") {
		t.Fatalf("purge with podman away: %v", err)
	}
	if _, err := os.Stat(data); err != nil {
		t.Fatalf("a refused purge deleted data: %v", err)
	}
}
