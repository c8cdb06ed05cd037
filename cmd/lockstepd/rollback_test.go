package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lockstep/lockstep/internal/testenv"
)

// TestBrokenUpdateRollsBackByItself: lockstepd with no timer and no call. A manifest edit (inotify)
// recreates a serving app with a spec whose health check never passes; the health monitor's pass
// rolls it back; the port serves again and the saved report says rolled-back.
func TestBrokenUpdateRollsBackByItself(t *testing.T) {
	pm := realPodman(t)
	bus := testenv.StartBus(t, testenv.BusConfig{})
	dir := t.TempDir()
	apps := filepath.Join(dir, "apps.d")
	os.MkdirAll(apps, 0o755)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	spec := func(listen int) string {
		return fmt.Sprintf(`  container:
    image: %s
    command: [httpd, -f, -p, "%d", -h, /www]
    ports: ["127.0.0.1:%d:8080/tcp"]
    stop_grace_period: 1s
  health: {command: [wget, -q, -O, /dev/null, "http://127.0.0.1:8080/"], interval: 1s, timeout: 2s, retries: 2, start_period: 1s}
`, image, listen, port)
	}
	writeApp(t, apps, "rb-web", spec(8080))
	t.Cleanup(func() { pm.CLI("rm", "-f", "-t", "0", "rb-web") })
	d := startDaemon(t, nil, "--bus", bus.Address, "--podman-url", pm.URL(), "--apps-dir", apps,
		"--state-dir", filepath.Join(dir, "state"), "--runtime-dir", filepath.Join(dir, "run"), "--systemd-scope", "none", "--log-level", "debug")

	type report struct {
		Actions []struct{ App, Action, Cause string }
		Apps    []struct {
			ID     string `json:"id"`
			State  string `json:"state"`
			Health string `json:"health"`
		}
	}
	waitApp := func(what string, ok func(state, health string) bool) {
		t.Helper()
		var last []byte
		for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
			last, _ = os.ReadFile(filepath.Join(dir, "state", "report.json"))
			var r report
			if json.Unmarshal(last, &r) == nil {
				for _, a := range r.Apps {
					if a.ID == "rb-web" && ok(a.State, a.Health) {
						return
					}
				}
			}
		}
		t.Fatalf("never %s; last report:\n%s", what, last)
	}
	serves := func() bool {
		for i := 0; i < 50; i++ {
			if resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/", port)); err == nil {
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				return strings.Contains(string(b), "hello from busybox")
			}
			time.Sleep(100 * time.Millisecond)
		}
		return false
	}
	waitApp("healthy", func(s, h string) bool { return s == "running" && h == "healthy" })
	if !serves() {
		t.Fatal("not serving")
	}
	good := pm.MustCLI(t, "inspect", "--format", `{{index .Config.Labels "io.lockstep.spec-hash"}}`, "rb-web")
	// The pass that saw it healthy recorded its spec as good.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if b, _ := os.ReadFile(filepath.Join(dir, "state", "rollback.json")); strings.Contains(string(b), good) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("good spec never saved")
		}
	}

	writeApp(t, apps, "rb-web", spec(8081)) // the server moves: the port and the health check fail
	waitApp("rolled back", func(s, h string) bool { return s == "rolled-back" })
	if h := pm.MustCLI(t, "inspect", "--format", `{{index .Config.Labels "io.lockstep.spec-hash"}}`, "rb-web"); h != good {
		t.Fatalf("running hash %s, want the good %s", h, good)
	}
	if !serves() {
		t.Fatal("not serving after the rollback")
	}
	logs := d.Logs()
	for _, want := range []string{"action=recreate app=rb-web", "action=rollback app=rb-web", "health check failing"} {
		if !strings.Contains(logs, want) {
			t.Fatalf("log lacks %q:\n%s", want, logs)
		}
	}
	// Held: healthy again, no further recreate.
	waitApp("healthy after the rollback", func(s, h string) bool { return s == "rolled-back" && h == "healthy" })
	if n := strings.Count(d.Logs(), "action=recreate app=rb-web"); n != 1 {
		t.Fatalf("%d recreates: the failed spec was retried\n%s", n, d.Logs())
	}
	d.Cmd.Process.Signal(syscall.SIGTERM)
	d.Wait(t, 30*time.Second)
}
