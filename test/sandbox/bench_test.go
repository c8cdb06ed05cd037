//go:build sandbox

package sandbox

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"

	"github.com/lockstep/lockstep/reconciler/companions"
	"github.com/lockstep/lockstep/systemd"
)

// BenchmarkNoopCompanionStage: 20 companions installed and active; every iteration is a no-op pass.
// Counted independently of lockstep's own counters: daemon-reloads as systemd's Reloading signals on
// the bus, file writes as changes of the unit files' inode or mtime. Both must be 0.
func BenchmarkNoopCompanionStage(b *testing.B) {
	e := newEnv(b, companions.ModeQuadlet, systemd.System)
	var body strings.Builder
	body.WriteString("  companions:\n")
	var ids []string
	for i := 0; i < 20; i++ {
		id := fmt.Sprintf("bench-ui-%02d", i)
		ids = append(ids, id)
		fmt.Fprintf(&body, "    - id: %s\n      image: %s\n      command: [httpd, -f, -p, \"%d\", -h, /www]\n      network: host\n      stop_grace_period: 1s\n", id, image, 18200+i)
	}
	y := fmt.Sprintf("app:\n  id: bench-app\n  name: bench\n  version: '1'\n  container:\n    image: %s\n    command: [sleep, '100000']\n    stop_grace_period: 1s\n%s", image, body.String())
	os.WriteFile(filepath.Join(e.apps, "bench-app.yaml"), []byte(y), 0o644)
	ctx := context.Background()
	if r := e.rec.Pass(ctx, "setup"); len(r.Failures) > 0 {
		b.Fatalf("setup: %+v", r.Failures)
	}
	defer func() {
		os.Remove(filepath.Join(e.apps, "bench-app.yaml"))
		e.rec.Pass(ctx, "teardown")
	}()
	conn, err := dbus.ConnectSystemBus()
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	conn.Object("org.freedesktop.systemd1", "/org/freedesktop/systemd1").Call("org.freedesktop.systemd1.Manager.Subscribe", 0)
	conn.AddMatchSignal(dbus.WithMatchInterface("org.freedesktop.systemd1.Manager"), dbus.WithMatchMember("Reloading"))
	sigs := make(chan *dbus.Signal, 100)
	conn.Signal(sigs)
	stamp := func() map[string]string {
		m := map[string]string{}
		for _, id := range ids {
			fi, err := os.Stat(filepath.Join(e.cc.Dir, "lockstep-"+id+".container"))
			if err != nil {
				b.Fatal(err)
			}
			m[id] = fmt.Sprintf("%d/%d", fi.Sys().(*syscall.Stat_t).Ino, fi.ModTime().UnixNano())
		}
		return m
	}
	before := stamp()
	b.ResetTimer()
	var total time.Duration
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		r := e.rec.Pass(ctx, "bench")
		total += time.Since(t0)
		if len(r.Actions) > 0 || len(r.Failures) > 0 {
			b.Fatalf("not a no-op: %+v %+v", r.Actions, r.Failures)
		}
	}
	b.StopTimer()
	time.Sleep(300 * time.Millisecond)
	after := stamp()
	writes := 0
	for id := range before {
		if before[id] != after[id] {
			writes++
		}
	}
	b.ReportMetric(float64(writes), "file-writes")
	b.ReportMetric(float64(len(sigs)), "daemon-reloads")
	b.ReportMetric(float64(total.Microseconds())/1000/float64(b.N), "pass-ms")
	if writes != 0 || len(sigs) != 0 {
		b.Fatalf("a no-op companion stage wrote %d files and reloaded %d times", writes, len(sigs))
	}
}
