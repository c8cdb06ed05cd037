package dbusapi

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"

	"github.com/lockstep/lockstep/internal/testenv"
	"github.com/lockstep/lockstep/reconciler"
	"github.com/lockstep/lockstep/report"
)

// hundredApps makes a passer whose reports carry 100 apps, like a large node.
func hundredApps(p *fakePasser) {
	p.mu.Lock()
	defer p.mu.Unlock()
	r := &report.Report{PassID: 1, Trigger: "bench", StartedAt: time.Now(), FinishedAt: time.Now()}
	for i := 0; i < 100; i++ {
		r.Apps = append(r.Apps, report.AppStatus{ID: fmt.Sprintf("app-%03d", i), State: "running", Health: "healthy",
			Image: "docker.io/library/busybox:1.36", ContainerID: fmt.Sprintf("%064d", i), LastAction: "install"})
	}
	p.last = r
}

func percentile(d []time.Duration, p float64) time.Duration {
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	return d[int(float64(len(d)-1)*p)]
}

var reportCalls = 10000

// BenchmarkReport times Report() calls over a real dbus-daemon with a 100-app report, from the call
// to the decoded report as lockstepctl gets it (godbus's reply, then DecodeReport): p50, p90 and
// p99 in microseconds (goal p99 <= 2 ms). The server runs in a process of its own on a Dial
// connection, as lockstepd does (this test binary, re-run as TestHelperReportServer). Each iteration
// is 10,000 calls, measured twice: "gc" with the client's garbage collector on, as a long-lived
// client sees it (each decoded report leaves ~1 MB of garbage: the collector then runs every few
// calls and its pauses and assists land in the timings); "oneshot" with it collecting only between
// timed calls, as a one-call client like lockstepctl, whose heap never reaches its first collection,
// sees it.
func BenchmarkReport(b *testing.B) {
	testenv.Need(b, "dbus-daemon")
	bus := testenv.StartBus(b, policy())
	srv := exec.Command(os.Args[0], "-test.run", "^TestHelperReportServer$")
	srv.Env = append(os.Environ(), "LOCKSTEP_REPORT_SERVER="+bus.Address)
	stdin, _ := srv.StdinPipe()
	stdout, _ := srv.StdoutPipe()
	srv.Stderr = os.Stderr
	if err := srv.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { stdin.Close(); srv.Wait() })
	if line, err := bufio.NewReader(stdout).ReadString('\n'); err != nil || !strings.HasPrefix(line, "ready") {
		b.Fatalf("report server: %q %v", line, err)
	}
	client, err := dbus.Connect(bus.Address)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { client.Close() })
	obj := client.Object(BusName, ObjectPath)
	measure := func(oneshot bool) []time.Duration {
		if oneshot {
			defer debug.SetGCPercent(debug.SetGCPercent(-1))
		}
		lat := make([]time.Duration, 0, reportCalls)
		for j := 0; j < reportCalls; j++ {
			if oneshot && j%100 == 0 {
				runtime.GC() // between timed calls
			}
			t0 := time.Now()
			call := obj.Call(Interface+".Report", 0)
			if call.Err != nil {
				b.Fatal(call.Err)
			}
			rep, err := DecodeReport(call.Body[0].(map[string]dbus.Variant))
			lat = append(lat, time.Since(t0))
			if err != nil || len(rep.Apps) != 100 {
				b.Fatalf("report: %v", err)
			}
		}
		return lat
	}
	for i := 0; i < b.N; i++ {
		for _, oneshot := range []bool{false, true} {
			name := "gc"
			if oneshot {
				name = "oneshot"
			}
			lat := measure(oneshot)
			b.ReportMetric(float64(percentile(lat, 0.50).Microseconds()), name+"-p50-µs")
			b.ReportMetric(float64(percentile(lat, 0.90).Microseconds()), name+"-p90-µs")
			b.ReportMetric(float64(percentile(lat, 0.99).Microseconds()), name+"-p99-µs")
		}
	}
}

// TestHelperReportServer is BenchmarkReport's server process: lockstepd's D-Bus API on a Dial
// connection with a 100-app report, until its stdin closes. It does nothing in a normal test run.
func TestHelperReportServer(t *testing.T) {
	addr := os.Getenv("LOCKSTEP_REPORT_SERVER")
	if addr == "" {
		return
	}
	conn, err := Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	p := &fakePasser{}
	hundredApps(p)
	srv, err := Export(conn, &fakeBackend{Runner: reconciler.NewRunner(p), p: p}, Config{})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.RequestName(); err != nil {
		t.Fatal(err)
	}
	fmt.Println("ready")
	io.Copy(io.Discard, os.Stdin)
}

// BenchmarkReportChangedDelay measures, at a subscriber on the bus, the delay from a pass's end to the
// arrival of its ReportChanged signal.
func BenchmarkReportChangedDelay(b *testing.B) {
	e := startB(b)
	if err := e.client.AddMatchSignal(dbus.WithMatchObjectPath(ObjectPath), dbus.WithMatchMember("ReportChanged")); err != nil {
		b.Fatal(err)
	}
	sigs := make(chan *dbus.Signal, 16)
	e.client.Signal(sigs)
	var delays []time.Duration
	for i := 0; i < b.N; i++ {
		e.p.set(fmt.Sprintf("change %d", i)) // every pass says something new
		rep := <-e.b.Request("bench")
		s := <-sigs
		got := time.Now()
		if s.Body[0].(map[string]dbus.Variant)["PassId"].Value().(uint64) != rep.PassID {
			b.Fatal("signal for another pass")
		}
		delays = append(delays, got.Sub(rep.FinishedAt))
	}
	b.ReportMetric(float64(percentile(delays, 0.50).Microseconds()), "p50-µs")
	b.ReportMetric(float64(percentile(delays, 0.99).Microseconds()), "p99-µs")
}

func startB(b *testing.B) *env {
	b.Helper()
	bus := testenv.StartBus(b, policy())
	conn, err := Dial(bus.Address) // as lockstepd connects
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { conn.Close() })
	p := &fakePasser{}
	runner := reconciler.NewRunner(p)
	fb := &fakeBackend{Runner: runner, p: p}
	srv, err := Export(conn, fb, Config{})
	if err != nil {
		b.Fatal(err)
	}
	if err := srv.RequestName(); err != nil {
		b.Fatal(err)
	}
	runner.Started = srv.PassStarted
	runner.Finished = srv.PassFinished
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { runner.Run(ctx); close(done) }()
	b.Cleanup(func() { cancel(); <-done })
	client, err := dbus.Connect(bus.Address)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { client.Close() })
	return &env{bus: bus, srv: srv, b: fb, p: p, client: client, cancel: cancel}
}
