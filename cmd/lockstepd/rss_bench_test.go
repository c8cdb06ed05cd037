package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/godbus/dbus/v5"
	"golang.org/x/sys/unix"

	"github.com/lockstep/lockstep/dbusapi"
	"github.com/lockstep/lockstep/internal/testenv"
)

// procStatus returns a field of /proc/PID/status in KiB (VmRSS, VmHWM, ...).
func procStatus(tb testing.TB, pid int, field string) int {
	tb.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			n, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			return n
		}
	}
	tb.Fatalf("no %s in /proc/%d/status", field, pid)
	return 0
}

// buildLockstepd builds the real lockstepd binary (not this test binary, which carries the testing
// packages) into a temporary dir.
func buildLockstepd(tb testing.TB) string {
	tb.Helper()
	testenv.Need(tb, "go")
	bin := filepath.Join(tb.TempDir(), "lockstepd")
	cmd := exec.Command("go", "build", "-trimpath", "-o", bin, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("building lockstepd: %v\n%s", err, out)
	}
	return bin
}

// BenchmarkDaemonRSS runs the real lockstepd binary with 100 apps on a real podman and bus and reads
// its memory from /proc: the peak (VmHWM) of the start-up pass that installs all 100, the resident
// set (VmRSS) when idle afterwards, and the peak of a no-op pass over the 100 (VmHWM reset through
// /proc/PID/clear_refs first). During that no-op pass it also counts, outside lockstepd, the podman
// API requests (a counting proxy in front of the service) and the files written or replaced in the
// apps, state, data and runtime dirs (inotify: IN_CLOSE_WRITE of a final name, IN_MOVED_TO).
func BenchmarkDaemonRSS(b *testing.B) {
	pm := shared.Get(b, "podman", "runc", "busybox").(*testenv.Podman)
	proxy := testenv.StartCountingProxy(b, b.TempDir(), pm.Socket)
	bin := buildLockstepd(b)
	bus := testenv.StartBus(b, testenv.BusConfig{})
	dir := b.TempDir()
	apps := filepath.Join(dir, "apps.d")
	os.MkdirAll(apps, 0o755)
	var ids []string
	for i := 0; i < 100; i++ {
		id := fmt.Sprintf("rss-%03d", i)
		ids = append(ids, id)
		writeApp(b, apps, id, fmt.Sprintf("  container:\n    image: %s\n    command: [sleep, '1000000']\n    stop_grace_period: 1s\n", image))
	}
	b.Cleanup(func() { pm.CLI(append([]string{"rm", "-f", "-t", "0", "--ignore"}, ids...)...) })
	client, err := dbus.Connect(bus.Address)
	if err != nil {
		b.Fatal(err)
	}
	defer client.Close()
	for i := 0; i < b.N; i++ {
		ns := newNotifySocket(b, filepath.Join(dir, fmt.Sprintf("n%d", i)))
		cmd := exec.Command(bin, "--bus", bus.Address, "--podman-url", proxy.URL(), "--apps-dir", apps,
			"--state-dir", filepath.Join(dir, "state"), "--runtime-dir", filepath.Join(dir, "run"), "--systemd-scope", "none", "--log-level", "warn")
		cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+ns.path)
		var mu sync.Mutex
		var out strings.Builder
		cmd.Stdout = writerFunc(func(p []byte) (int, error) { mu.Lock(); defer mu.Unlock(); return out.Write(p) })
		cmd.Stderr = cmd.Stdout
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		pid := cmd.Process.Pid
		if i == 0 {
			ns.waitFor(b, "STATUS=idle: 100 apps, 0 failing; pass 1:", 10*time.Minute)
			b.ReportMetric(float64(procStatus(b, pid, "VmHWM"))/1024, "rss-peak-install-100-MiB")
		} else {
			ns.waitFor(b, "STATUS=idle: 100 apps, 0 failing", 2*time.Minute)
		}
		time.Sleep(3 * time.Second) // idle: no pass, health and event goroutines waiting
		b.ReportMetric(float64(procStatus(b, pid, "VmRSS"))/1024, "rss-idle-MiB")
		if err := os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0); err != nil {
			b.Fatalf("resetting the peak: %v", err)
		}
		watch := watchWrites(b, apps, filepath.Join(dir, "state"), filepath.Join(dir, "state", "apps"), filepath.Join(dir, "run"))
		proxy.Reset()
		var rep map[string]dbus.Variant
		if err := client.Object(dbusapi.BusName, dbusapi.ObjectPath).Call(dbusapi.Interface+".Reconcile", 0).Store(&rep); err != nil {
			b.Fatal(err)
		}
		if a := rep["Actions"].Value().([][]any); len(a) != 0 {
			b.Fatalf("not a no-op pass: %v", a)
		}
		b.ReportMetric(float64(procStatus(b, pid, "VmHWM"))/1024, "rss-peak-noop-pass-MiB")
		b.ReportMetric(float64(proxy.Count()), "requests/noop-pass")
		written := watch()
		b.ReportMetric(float64(len(written)), "file-writes/noop-pass")
		if i == 0 {
			b.Logf("files written by a no-op pass: %v", written)
		}
		cmd.Process.Signal(syscall.SIGTERM)
		if err := cmd.Wait(); err != nil {
			mu.Lock()
			b.Fatalf("lockstepd: %v\n%s", err, out.String())
		}
	}
}

// watchWrites watches dirs with inotify and returns a function that stops and returns the files
// written or moved into place since (temporary files of atomic writes, named .NAME.tmp-*, are not
// counted: their rename is).
func watchWrites(tb testing.TB, dirs ...string) func() []string {
	tb.Helper()
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		tb.Fatal(err)
	}
	names := map[int]string{}
	for _, d := range dirs {
		os.MkdirAll(d, 0o755)
		wd, err := unix.InotifyAddWatch(fd, d, unix.IN_CLOSE_WRITE|unix.IN_MOVED_TO)
		if err != nil {
			tb.Fatal(err)
		}
		names[wd] = d
	}
	return func() []string {
		defer unix.Close(fd)
		time.Sleep(100 * time.Millisecond)
		var out []string
		buf := make([]byte, 64<<10)
		for {
			n, err := unix.Read(fd, buf)
			if n <= 0 || err != nil {
				return out
			}
			for off := 0; off+unix.SizeofInotifyEvent <= n; {
				ev := (*unix.InotifyEvent)(unsafe.Pointer(&buf[off]))
				name := strings.TrimRight(string(buf[off+unix.SizeofInotifyEvent:off+unix.SizeofInotifyEvent+int(ev.Len)]), "\x00")
				off += unix.SizeofInotifyEvent + int(ev.Len)
				if strings.HasPrefix(name, ".") && strings.Contains(name, ".tmp-") {
					continue
				}
				out = append(out, filepath.Join(names[int(ev.Wd)], name))
			}
		}
	}
}
