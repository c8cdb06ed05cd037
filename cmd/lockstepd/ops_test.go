package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/lockstep/lockstep/dbusapi"
	"github.com/lockstep/lockstep/internal/testenv"
)

// TestConcurrentRemovesOverDBus: two Remove calls at once for the two alternative providers lnd
// needs, on the real daemon, bus and podman: one is carried out, the other refused with Needed naming
// lnd (the runner applies the two removes one after the other, each check with its effect).
func TestConcurrentRemovesOverDBus(t *testing.T) {
	pm := realPodman(t)
	bus := testenv.StartBus(t, testenv.BusConfig{Policies: []string{"../../units/org.lockstep.Reconciler1.conf"}})
	dir := t.TempDir()
	apps, catalog := filepath.Join(dir, "apps.d"), filepath.Join(dir, "catalog")
	os.MkdirAll(apps, 0o755)
	os.MkdirAll(catalog, 0o755)
	body := fmt.Sprintf("  container:\n    image: %s\n    command: [sh, -c, 'trap \"exit 0\" TERM; while :; do sleep 1; done']\n    stop_grace_period: 1s\n", image)
	writeApp(t, catalog, "alt-knots", "  provides: [altchain]\n"+body)
	writeApp(t, catalog, "alt-core", "  provides: [altchain]\n"+body)
	writeApp(t, catalog, "alt-lnd", "  requires: {apps: [altchain]}\n"+body)
	t.Cleanup(func() { pm.CLI("rm", "-f", "-t", "0", "alt-knots", "alt-core", "alt-lnd") })
	ns := newNotifySocket(t, dir)
	d := startDaemon(t, []string{"NOTIFY_SOCKET=" + ns.path}, "--bus", bus.Address, "--podman-url", pm.URL(), "--apps-dir", apps,
		"--catalog-dir", catalog, "--state-dir", filepath.Join(dir, "state"), "--runtime-dir", filepath.Join(dir, "run"), "--systemd-scope", "none")
	ns.waitFor(t, "READY=1", 20*time.Second)
	call := func(args ...string) (string, error) {
		return bus.Run("", "busctl", append([]string{"--system", "--timeout=120", "call", dbusapi.BusName, string(dbusapi.ObjectPath), dbusapi.Interface}, args...)...)
	}
	for _, id := range []string{"alt-knots", "alt-core", "alt-lnd"} {
		if out, err := call("Install", "s", id); err != nil {
			t.Fatalf("Install %s: %v %s", id, err, out)
		}
	}
	type res struct {
		out string
		err error
	}
	results := make([]res, 2)
	var wg sync.WaitGroup
	for i, id := range []string{"alt-knots", "alt-core"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, err := call("Remove", "sb", id, "false")
			results[i] = res{out, err}
		}()
	}
	wg.Wait()
	ok, refused := 0, 0
	for _, r := range results {
		switch {
		case r.err == nil:
			ok++
		case strings.Contains(r.out, "Needed") || strings.Contains(r.out, "needed by alt-lnd (requires altchain)"):
			refused++
		default:
			t.Fatalf("Remove: %v %s", r.err, r.out)
		}
	}
	if ok != 1 || refused != 1 {
		t.Fatalf("%d removed, %d refused: %+v", ok, refused, results)
	}
	left := 0
	for _, id := range []string{"alt-knots", "alt-core"} {
		if _, err := os.Lstat(filepath.Join(apps, id+".yaml")); err == nil {
			left++
		}
	}
	if left != 1 {
		t.Fatalf("%d providers left installed, want 1", left)
	}
	d.Cmd.Process.Signal(syscall.SIGTERM)
	d.Wait(t, 30*time.Second)
}
