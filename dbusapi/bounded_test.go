package dbusapi

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"

	"github.com/lockstep/lockstep/internal/testenv"
	"github.com/lockstep/lockstep/ops"
	"github.com/lockstep/lockstep/reconciler"
	"github.com/lockstep/lockstep/report"
)

// hugePasser's every report is 40 MB: past the bus's message limit (32 MiB), as 100,000 failing
// manifests with long messages make it.
type hugePasser struct {
	mu   sync.Mutex
	last *report.Report
}

func (h *hugePasser) Pass(ctx context.Context, trigger string) *report.Report {
	r := &report.Report{PassID: 1, Trigger: trigger, StartedAt: time.Now(), FinishedAt: time.Now()}
	for range 100_000 {
		r.Failures = append(r.Failures, report.Failure{App: "bad", Error: strings.Repeat("x", 400)})
	}
	h.mu.Lock()
	h.last = r
	h.mu.Unlock()
	return r
}
func (h *hugePasser) Apply(ctx context.Context, op ops.Op) error { return nil }

type hugeBackend struct {
	*reconciler.Runner
	h *hugePasser
}

func (b hugeBackend) Last() *report.Report {
	b.h.mu.Lock()
	defer b.h.mu.Unlock()
	return b.h.last
}

// Report of a report past the bus's message limit answers, bounded, with the count of the failures
// left out, on a real dbus-daemon; lockstepd stays connected and answers again.
func TestAHugeReportStaysUnderTheBusLimit(t *testing.T) {
	bus := testenv.StartBus(t, policy())
	conn, err := Dial(bus.Address)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	h := &hugePasser{}
	runner := reconciler.NewRunner(h)
	srv, err := Export(conn, hugeBackend{Runner: runner, h: h}, Config{AdminGroup: "lockstep"})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.RequestName(); err != nil {
		t.Fatal(err)
	}
	runner.Finished = srv.PassFinished
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { runner.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	client, err := dbus.Connect(bus.Address)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	obj := client.Object(BusName, ObjectPath)
	var rep map[string]dbus.Variant
	if err := obj.Call(Interface+".Reconcile", 0).Store(&rep); err != nil {
		t.Fatalf("Reconcile: %v", err)
	}
	for i := range 2 {
		var got map[string]dbus.Variant
		if err := obj.Call(Interface+".Report", 0).Store(&got); err != nil {
			t.Fatalf("Report %d: %v", i, err)
		}
		r, err := DecodeReport(got)
		if err != nil {
			t.Fatal(err)
		}
		last := r.Failures[len(r.Failures)-1].Error
		if len(r.Failures) > 500 || !strings.Contains(last, "more failures not shown") {
			t.Fatalf("%d failures, the last %q", len(r.Failures), last)
		}
	}
	if !conn.Connected() {
		t.Fatal("lockstepd's connection was dropped")
	}
}
