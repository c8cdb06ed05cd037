package main

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"syscall"
	"testing"
	"time"

	"github.com/lockstep/lockstep/internal/testenv"
)

// BenchmarkExecToReady measures the time from exec of lockstepd to READY=1 on its NOTIFY_SOCKET with
// 100 installed manifests, a real podman service to probe and a real dbus-daemon (goal <= 250 ms).
func BenchmarkExecToReady(b *testing.B) {
	pm := shared.Get(b, "podman", "runc", "busybox").(*testenv.Podman)
	bus := testenv.StartBus(b, testenv.BusConfig{})
	dir := b.TempDir()
	apps := filepath.Join(dir, "apps.d")
	os.MkdirAll(apps, 0o755)
	for i := 0; i < 100; i++ {
		id := fmt.Sprintf("ready-%03d", i)
		y := fmt.Sprintf("app:\n  id: %s\n  name: %s\n  version: '1'\n  container:\n    image: localhost/lockstep-bench/none:%d\n    command: [sleep, '1000']\n    ports: ['127.0.0.1:%d:80']\n    volumes: ['${APP_DATA}/data:/data']\n  health: {command: [true], interval: 30s}\n", id, id, i, 20000+i)
		os.WriteFile(filepath.Join(apps, id+".yaml"), []byte(y), 0o644)
	}
	var lat []time.Duration
	for i := 0; i < b.N; i++ {
		ns := newNotifySocket(b, filepath.Join(dir, fmt.Sprintf("n%d", i)))
		t0 := time.Now()
		d := startDaemon(b, []string{"NOTIFY_SOCKET=" + ns.path}, "--bus", bus.Address, "--podman-url", pm.URL(), "--apps-dir", apps,
			"--state-dir", filepath.Join(dir, "state"), "--runtime-dir", filepath.Join(dir, "run"), "--log-level", "error")
		ns.waitFor(b, "READY=1", 20*time.Second)
		lat = append(lat, time.Since(t0))
		// Only start-up is measured: the start-up pass (pulls of images that exist nowhere, which
		// podman retries) is not waited for.
		d.Cmd.Process.Signal(syscall.SIGKILL)
		d.Wait(b, 60*time.Second)
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "median-ms")
	b.ReportMetric(float64(lat[len(lat)-1].Microseconds())/1000, "max-ms")
}
