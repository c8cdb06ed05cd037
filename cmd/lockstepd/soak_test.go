package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"

	"github.com/lockstep/lockstep/dbusapi"
	lsengine "github.com/lockstep/lockstep/engine"
	"github.com/lockstep/lockstep/internal/podmantest"
	"github.com/lockstep/lockstep/internal/testenv"
	"github.com/lockstep/lockstep/manifest"
	"github.com/lockstep/lockstep/podman"
	"github.com/lockstep/lockstep/reconciler"
	"github.com/lockstep/lockstep/report"
)

// memPodman is the one fake podman (internal/podmantest) behind the daemon's engine interface too:
// the soak runs the whole daemon (runner, D-Bus, HTTP socket, inotify, health and event goroutines)
// for thousands of passes, which a real podman service could not do in minutes (a recreate costs it
// ~300 ms) and whose own growth would hide lockstepd's. It counts calls without keeping them.
type memPodman struct{ *podmantest.Podman }

func newMemPodman() *memPodman {
	n := 0 // under the fake's lock: ID is called by Create
	return &memPodman{&podmantest.Podman{CountOnly: true, ID: func(string) string { n++; return fmt.Sprintf("%064x", n) }}}
}

var (
	_ lsengine.Podman = (*memPodman)(nil)
	_ engine          = (*memPodman)(nil)
)

func (m *memPodman) Connect(ctx context.Context) error { return nil }
func (m *memPodman) Watch(ctx context.Context, on func(podman.Event), reconnected func()) {
	<-ctx.Done()
}
func (m *memPodman) RunHealthCheck(ctx context.Context, id string) (string, int, error) {
	return report.HealthHealthy, 0, nil
}

type soakSample struct {
	goroutines, fds int
	rssKiB          int
	anonKiB         int    // RssAnon: RSS less file-backed pages (the binary's code, mapped in as it runs)
	heap            uint64 // live heap after a GC
	ms              runtime.MemStats
}

func sample(t *testing.T) soakSample {
	runtime.GC()
	debug.FreeOSMemory()
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return soakSample{goroutines: runtime.NumGoroutine(), fds: len(fds), rssKiB: procStatus(t, os.Getpid(), "VmRSS"), anonKiB: procStatus(t, os.Getpid(), "RssAnon"), heap: ms.HeapAlloc, ms: ms}
}

// TestSoak runs the whole daemon in this process (serve, with a real dbus-daemon, real manifest dirs
// watched with inotify, the HTTP socket, and memPodman) through passes asked for over D-Bus while
// manifests change under it: every 10th pass edits an app (a recreate), every 50th installs or
// removes one (inotify asks for passes of its own too). It compares goroutines, open fds and RSS
// after a warm-up with the same at the end: goroutines and fds must not grow (exact counts, after
// the daemon settles); the memory the runtime holds from the OS and the live heap must stay within
// 5 % (RSS is printed; see below). make soak runs 10,000 passes (LOCKSTEP_SOAK=1,
// LOCKSTEP_SOAK_PASSES=N for more); make test runs 400 as a leak check of goroutines and fds only.
func TestSoak(t *testing.T) {
	passes, warm, checkRSS := 400, 100, false
	if os.Getenv("LOCKSTEP_SOAK") == "1" {
		passes, warm, checkRSS = 10000, 500, true
		fmt.Sscan(os.Getenv("LOCKSTEP_SOAK_PASSES"), &passes) // for longer runs
	}
	bus := testenv.StartBus(t, testenv.BusConfig{})
	dir := t.TempDir()
	apps, catalog, state, run := filepath.Join(dir, "apps.d"), filepath.Join(dir, "catalog"), filepath.Join(dir, "state"), filepath.Join(dir, "run")
	os.MkdirAll(apps, 0o755)
	os.MkdirAll(catalog, 0o755)
	app := func(id string, gen int) {
		writeApp(t, apps, id, fmt.Sprintf("  container:\n    image: localhost/soak/%s:1\n    command: [sleep, '100000']\n    env: {GEN: '%d'}\n    volumes: ['${APP_DATA}/data:/data']\n", id, gen))
	}
	const base = 20
	for i := 0; i < base; i++ {
		app(fmt.Sprintf("soak-%02d", i), 0)
	}
	o, err := parseFlags([]string{"--bus", bus.Address, "--apps-dir", apps, "--catalog-dir", catalog, "--state-dir", state,
		"--runtime-dir", run, "--systemd-scope", "none", "--log-level", "error"})
	if err != nil {
		t.Fatal(err)
	}
	log, _ := newLogger("error")
	mem := newMemPodman()
	rec, err := reconciler.New(reconciler.Config{AppsDir: apps, CatalogDir: catalog, StateDir: state,
		Roots: manifest.Roots{DataRoot: filepath.Join(state, "apps")}, Parallel: 4, Log: log}, mem)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan int, 1)
	go func() { served <- serve(ctx, o, log, rec, mem) }()
	defer func() {
		cancel()
		if code := <-served; code != 0 {
			t.Errorf("serve returned %d", code)
		}
	}()
	client, err := dbus.Connect(bus.Address)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	obj := client.Object(dbusapi.BusName, dbusapi.ObjectPath)
	reconcile := func() *report.Report {
		t.Helper()
		var m map[string]dbus.Variant
		var err error
		for i := 0; i < 100; i++ { // the name appears once serve has taken it
			if err = obj.Call(dbusapi.Interface+".Reconcile", 0).Store(&m); err == nil {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if err != nil {
			t.Fatalf("Reconcile: %v", err)
		}
		r, err := dbusapi.DecodeReport(m)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	// settle lets debounced inotify passes run, then runs one more pass so the daemon is idle.
	settle := func() *report.Report {
		time.Sleep(400 * time.Millisecond)
		return reconcile()
	}
	extra, gen := 0, 0
	step := func(i int) {
		switch {
		case i%50 == 0 && extra > 0 && i%100 == 0:
			extra--
			os.Remove(filepath.Join(apps, fmt.Sprintf("soak-x%d.yaml", extra)))
		case i%50 == 0:
			app(fmt.Sprintf("soak-x%d", extra), 0)
			extra++
		case i%10 == 0:
			gen++
			app(fmt.Sprintf("soak-%02d", gen%base), gen)
		}
		if r := reconcile(); len(r.Failures) > 0 {
			t.Fatalf("pass %d failed: %+v", r.PassID, r.Failures)
		}
	}
	i := 0
	for ; i < warm; i++ {
		step(i)
	}
	settle()
	start := sample(t)
	t0 := time.Now()
	for rec.Last().PassID < uint64(passes) {
		step(i)
		i++
	}
	final := settle()
	var end soakSample
	for deadline := time.Now().Add(3 * time.Second); ; {
		end = sample(t)
		if (end.goroutines <= start.goroutines && end.fds <= start.fds) || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	fmt.Printf("soak: %d passes in %s (%d Reconcile calls; inotify asked for passes too), %d apps at the end, %d podman lists\n",
		final.PassID, time.Since(t0).Round(time.Second), i+2, len(final.Apps), mem.N)
	fmt.Printf("soak: start (after %d warm-up passes): goroutines %d, open fds %d, RSS %.1f MiB (anonymous %.1f MiB), live heap %.2f MiB\n",
		warm, start.goroutines, start.fds, float64(start.rssKiB)/1024, float64(start.anonKiB)/1024, float64(start.heap)/(1<<20))
	fmt.Printf("soak: end:                              goroutines %d, open fds %d, RSS %.1f MiB (%+.1f %%; anonymous %.1f MiB, %+.1f %%), live heap %.2f MiB\n",
		end.goroutines, end.fds, float64(end.rssKiB)/1024, 100*float64(end.rssKiB-start.rssKiB)/float64(start.rssKiB),
		float64(end.anonKiB)/1024, 100*float64(end.anonKiB-start.anonKiB)/float64(start.anonKiB), float64(end.heap)/(1<<20))
	for _, x := range []soakSample{start, end} {
		m := x.ms
		fmt.Printf("soak: runtime: heap in use %.2f MiB, heap held %.2f MiB, stacks %.2f MiB, spans %.2f MiB, GC %.2f MiB, other %.2f MiB, total from OS %.2f MiB\n",
			mib(m.HeapInuse), mib(m.HeapSys-m.HeapReleased), mib(m.StackSys), mib(m.MSpanSys+m.MCacheSys), mib(m.GCSys), mib(m.OtherSys+m.BuckHashSys), mib(m.Sys-m.HeapReleased))
	}
	if end.goroutines > start.goroutines {
		t.Errorf("goroutines grew from %d to %d", start.goroutines, end.goroutines)
	}
	if end.fds > start.fds {
		t.Errorf("open fds grew from %d to %d", start.fds, end.fds)
	}
	// VmRSS also counts pages of the binary mapped in as code runs for the first time and first
	// touches of memory the runtime already holds, so it creeps up for a while without a leak. What
	// a leak would grow is the memory the Go runtime holds from the OS and the live heap.
	held := func(x soakSample) uint64 { return x.ms.Sys - x.ms.HeapReleased }
	if checkRSS && (float64(held(end)) > 1.05*float64(held(start)) || float64(end.heap) > 1.05*float64(start.heap)) {
		t.Errorf("memory grew by more than 5 %%: held from the OS %d to %d bytes, live heap %d to %d bytes",
			held(start), held(end), start.heap, end.heap)
	}
	if len(final.Failures) > 0 || len(final.Apps) != base+extra {
		t.Errorf("final report: %d apps (want %d), failures %+v", len(final.Apps), base+extra, final.Failures)
	}
}

func mib(b uint64) float64 { return float64(b) / (1 << 20) }
