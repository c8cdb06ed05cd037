package reconciler_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/lockstep/lockstep/internal/testenv"
	"github.com/lockstep/lockstep/podman"
	"github.com/lockstep/lockstep/reconciler"
)

// BenchmarkNoopPass measures a no-op pass over N installed, running apps against one bare
// containers.List in the same run, and counts the podman API requests of a no-op pass exactly.
// Figures: pass-ms, list-ms, pass/list (goal at 100 apps: <= 1.2), requests/pass (must be 1).
func BenchmarkNoopPass(b *testing.B) {
	pm := shared.Get(b, "podman", "runc", "busybox").(*testenv.Podman)
	dir := b.TempDir()
	f := &fixture{t: nil, pm: pm, dir: dir, apps: dir + "/apps.d", data: dir + "/data"}
	mkdirAll(b, f.apps)
	client := podman.New(pm.URL())
	rec, err := reconciler.New(reconciler.Config{AppsDir: f.apps, StateDir: dir + "/state", Roots: rootsOf(f)}, client)
	if err != nil {
		b.Fatal(err)
	}
	proxy := testenv.StartCountingProxy(b, dir, pm.Socket)
	counted := podman.New(proxy.URL())
	countedRec, err := reconciler.New(reconciler.Config{AppsDir: f.apps, StateDir: dir + "/state-counted", Roots: rootsOf(f)}, counted)
	if err != nil {
		b.Fatal(err)
	}
	var names []string
	b.Cleanup(func() {
		pm.CLI(append([]string{"rm", "--force", "--time", "0", "--ignore"}, names...)...)
	})
	ctx := context.Background()
	installed := 0
	for _, n := range []int{10, 50, 100} {
		for ; installed < n; installed++ {
			id := fmt.Sprintf("bench-%03d", installed)
			names = append(names, id)
			writeManifest(b, f.apps, id, fmt.Sprintf("  container:\n    image: %s\n    command: [sleep, \"1000000\"]\n    stop_grace_period: 1s\n", bbImage))
		}
		if r := rec.Pass(ctx, "setup"); len(r.Failures) > 0 {
			b.Fatalf("setup pass failed: %+v", r.Failures[0])
		}
		b.Run(fmt.Sprintf("apps=%d", n), func(b *testing.B) {
			var passT, listT time.Duration
			for i := 0; i < b.N; i++ {
				t0 := time.Now()
				r := rec.Pass(ctx, "bench")
				t1 := time.Now()
				if _, err := client.List(ctx); err != nil {
					b.Fatal(err)
				}
				t2 := time.Now()
				if len(r.Actions) > 0 || len(r.Failures) > 0 {
					b.Fatalf("not a no-op pass: %+v %+v", r.Actions, r.Failures)
				}
				passT += t1.Sub(t0)
				listT += t2.Sub(t1)
			}
			proxy.Reset()
			countedRec.Pass(ctx, "bench")
			b.ReportMetric(float64(passT.Microseconds())/1000/float64(b.N), "pass-ms")
			b.ReportMetric(float64(listT.Microseconds())/1000/float64(b.N), "list-ms")
			b.ReportMetric(float64(passT)/float64(listT), "pass/list")
			b.ReportMetric(float64(proxy.Count()), "requests/pass")
		})
	}
}
