package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// DaemonConfig is what NewDaemon builds a lockstepd under test from.
type DaemonConfig struct {
	// Podman is the podman the daemon talks to (--podman-url); nil gives no --podman-url.
	Podman *Podman
	// Bus configures its private bus; NoBus gives none (lockstepd --once).
	Bus   BusConfig
	NoBus bool
	// Catalog adds a catalog dir (--catalog-dir).
	Catalog bool
}

// Daemon is one lockstepd under test: its dirs (apps, catalog, state, runtime), its private bus, the
// podman it talks to, and, once Start ran, its process with its output. Every test that runs a
// lockstepd builds it here, so the flags that tie it to its environment are written once (Args).
type Daemon struct {
	Dir, Apps, Catalog, State, Run string
	Bus                            *Bus
	Podman                         *Podman

	Cmd  *exec.Cmd
	mu   sync.Mutex
	out  strings.Builder
	done chan error
}

// NewDaemon makes the daemon's dirs in a temp dir of t and starts its bus; Start starts it.
func NewDaemon(t TB, cfg DaemonConfig, dir string) *Daemon {
	t.Helper()
	d := &Daemon{Dir: dir, Apps: filepath.Join(dir, "apps.d"), State: filepath.Join(dir, "state"), Run: filepath.Join(dir, "run"), Podman: cfg.Podman}
	if cfg.Catalog {
		d.Catalog = filepath.Join(dir, "catalog")
	}
	for _, p := range []string{d.Apps, d.Catalog} {
		if p != "" {
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatalf("%v", err)
			}
		}
	}
	if !cfg.NoBus {
		d.Bus = StartBus(t, cfg.Bus)
	}
	return d
}

// Args are the flags that tie lockstepd to this environment: --bus, --podman-url, --apps-dir,
// --catalog-dir, --state-dir and --runtime-dir, those it has.
func (d *Daemon) Args() []string {
	var a []string
	if d.Bus != nil {
		a = append(a, "--bus", d.Bus.Address)
	}
	if d.Podman != nil {
		a = append(a, "--podman-url", d.Podman.URL())
	}
	a = append(a, "--apps-dir", d.Apps)
	if d.Catalog != "" {
		a = append(a, "--catalog-dir", d.Catalog)
	}
	return append(a, "--state-dir", d.State, "--runtime-dir", d.Run)
}

// WriteApp writes manifest id (its app: id, name and version, then body) into dir (Apps or
// Catalog); with a podman, the test's cleanup removes the container of that name.
func (d *Daemon) WriteApp(t TB, dir, id, body string) {
	t.Helper()
	y := fmt.Sprintf("app:\n  id: %s\n  name: %s\n  version: '1'\n%s", id, id, body)
	if err := os.WriteFile(filepath.Join(dir, id+".yaml"), []byte(y), 0o644); err != nil {
		t.Fatalf("%v", err)
	}
	if d.Podman != nil {
		t.Cleanup(func() { d.Podman.CLI("rm", "-f", "-t", "0", id) })
	}
}

// Start runs bin with args (Args() and more: the caller's) and env added to the test's, capturing
// its output (Logs); the test's cleanup kills it if it still runs, and prints its output if the test
// failed.
func (d *Daemon) Start(t TB, bin string, env []string, args ...string) {
	t.Helper()
	d.Cmd = exec.Command(bin, args...)
	d.Cmd.Env = append(os.Environ(), env...)
	w := writerFunc(func(p []byte) (int, error) { d.mu.Lock(); defer d.mu.Unlock(); return d.out.Write(p) })
	d.Cmd.Stdout, d.Cmd.Stderr = w, w
	if err := d.Cmd.Start(); err != nil {
		t.Fatalf("%v", err)
	}
	d.done = make(chan error, 1)
	go func() { d.done <- d.Cmd.Wait() }()
	t.Cleanup(func() {
		d.Cmd.Process.Kill()
		err := <-d.done
		d.done <- err
		if f, ok := t.(interface{ Failed() bool }); ok && f.Failed() {
			t.Logf("lockstepd output:\n%s", d.Logs())
		}
	})
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// Logs returns what the daemon has printed so far (for a failing test's message: tests assert on
// reports and calls, not on this).
func (d *Daemon) Logs() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.out.String()
}

// Done reports whether the daemon has exited.
func (d *Daemon) Done() bool {
	select {
	case err := <-d.done:
		d.done <- err
		return true
	default:
		return false
	}
}

// Wait waits up to timeout for the daemon to exit and returns its exit status.
func (d *Daemon) Wait(t TB, timeout time.Duration) int {
	t.Helper()
	select {
	case err := <-d.done:
		d.done <- err
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode()
		}
		if err != nil {
			t.Fatalf("%v", err)
		}
		return 0
	case <-time.After(timeout):
		t.Fatalf("lockstepd did not exit within %s", timeout)
	}
	return -1
}

// Stop sends SIGTERM and waits up to timeout for the exit; false if it had to kill it.
func (d *Daemon) Stop(timeout time.Duration) bool {
	if d.Done() {
		return true
	}
	d.Cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-d.done:
		d.done <- err
		return true
	case <-time.After(timeout):
		d.Cmd.Process.Kill()
		return false
	}
}
