package reconciler_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/lockstep/lockstep/internal/testenv"
	"github.com/lockstep/lockstep/podman"
	"github.com/lockstep/lockstep/reconciler"
)

// BenchmarkParallelInstalls installs 20 independent apps (busybox sleep containers, image present) on
// a real podman, once with Parallel 1 and once with the default bound of 4, removing them in
// between, and reports both pass times and parallel ÷ sequential (goal <= 0.6). The order of the two
// alternates between iterations so that neither always runs on a warmer podman.
// LOCKSTEP_BENCH_EXTRA is appended to each app's container section (e.g. "    network: none\n", to
// see what podman's bridge network setup costs), LOCKSTEP_BENCH_PARALLEL sets the bound.
func BenchmarkParallelInstalls(b *testing.B) {
	pm := shared.Get(b, "podman", "runc", "busybox").(*testenv.Podman)
	dir := b.TempDir()
	f := &fixture{pm: pm, dir: dir, apps: dir + "/apps.d", data: dir + "/data"}
	mkdirAll(b, f.apps)
	var ids []string
	for i := 0; i < 20; i++ {
		id := fmt.Sprintf("par-%02d", i)
		ids = append(ids, id)
		writeManifest(b, f.apps, id, fmt.Sprintf("  container:\n    image: %s\n    command: [sleep, \"1000000\"]\n    stop_grace_period: 1s\n"+os.Getenv("LOCKSTEP_BENCH_EXTRA"), bbImage))
	}
	removeAll := func() {
		pm.CLI(append([]string{"rm", "--force", "--time", "0", "--ignore"}, ids...)...)
	}
	b.Cleanup(removeAll)
	removeAll()
	client := podman.New(pm.URL())
	ctx := context.Background()
	install := func(parallel int) time.Duration {
		rec, err := reconciler.New(reconciler.Config{AppsDir: f.apps, StateDir: fmt.Sprintf("%s/state-%d", dir, parallel), Roots: rootsOf(f), Parallel: parallel}, client)
		if err != nil {
			b.Fatal(err)
		}
		t0 := time.Now()
		r := rec.Pass(ctx, "bench")
		took := time.Since(t0)
		if len(r.Failures) > 0 || len(r.Actions) != len(ids) {
			b.Fatalf("parallel %d: %d actions, failures %+v", parallel, len(r.Actions), r.Failures)
		}
		removeAll()
		os.RemoveAll(f.data)
		return took
	}
	var seq, par time.Duration
	for i := 0; i < b.N; i++ {
		if i%2 == 0 {
			seq += install(1)
			par += install(parallelBound)
		} else {
			par += install(parallelBound)
			seq += install(1)
		}
	}
	b.ReportMetric(float64(seq.Milliseconds())/float64(b.N), "sequential-ms")
	b.ReportMetric(float64(par.Milliseconds())/float64(b.N), "parallel-ms")
	b.ReportMetric(float64(par)/float64(seq), "parallel/sequential")
}

// parallelBound is the bound the benchmark compares with sequential installs: lockstepd's default
// (--parallel 4), or LOCKSTEP_BENCH_PARALLEL.
var parallelBound = func() int {
	n := 4
	fmt.Sscan(os.Getenv("LOCKSTEP_BENCH_PARALLEL"), &n)
	return n
}()
