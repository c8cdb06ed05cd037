package runner

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lockstep/lockstep/ops"
	"github.com/lockstep/lockstep/report"
)

type slowPasser struct {
	mu       sync.Mutex
	triggers []string
	applied  []string
	refuse   map[string]error
	started  chan struct{}
	release  chan struct{}
	ctxErr   error // the pass context's error when the last pass was released
}

func (s *slowPasser) Pass(ctx context.Context, trigger string) *report.Report {
	s.mu.Lock()
	s.triggers = append(s.triggers, trigger)
	n := uint64(len(s.triggers))
	s.mu.Unlock()
	s.started <- struct{}{}
	select {
	case <-s.release:
	case <-ctx.Done():
	}
	s.mu.Lock()
	s.ctxErr = ctx.Err()
	s.mu.Unlock()
	return &report.Report{PassID: n, Trigger: trigger}
}

func (s *slowPasser) Apply(ctx context.Context, op ops.Op) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.applied = append(s.applied, op.String())
	return s.refuse[op.String()]
}

func wait(t *testing.T, tk *ops.Ticket) (*report.Report, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rep, err := tk.Wait(ctx)
	if errors.Is(err, context.DeadlineExceeded) {
		t.Fatal("ticket not answered within 10 s")
	}
	return rep, err
}

func TestRunnerCoalescesTriggersIntoTheNextPass(t *testing.T) {
	sp := &slowPasser{started: make(chan struct{}, 10), release: make(chan struct{})}
	r := New(sp)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.Run(ctx); close(done) }()

	first := r.Request("startup")
	<-sp.started // pass 1 runs
	// Three requests while pass 1 runs: they join one pass 2, which starts after them.
	a, b, c := r.Request("dbus"), r.Request("timer"), r.Request("dbus")
	if !r.Busy() {
		t.Fatal("not busy during a pass")
	}
	sp.release <- struct{}{}
	if rep, _ := wait(t, first); rep.PassID != 1 {
		t.Fatalf("first got pass %d", rep.PassID)
	}
	<-sp.started
	sp.release <- struct{}{}
	for _, tk := range []*ops.Ticket{a, b, c} {
		if rep, err := wait(t, tk); err != nil || rep.PassID != 2 || rep.Trigger != "dbus,timer" {
			t.Fatalf("got %+v %v, want pass 2 with triggers dbus,timer", rep, err)
		}
	}
	select {
	case <-sp.started:
		t.Fatal("an extra pass ran")
	case <-time.After(50 * time.Millisecond):
	}
	// A request while a pass runs at shutdown: the running pass finishes, the queued one is answered
	// with ops.ErrStopped.
	last := r.Request("late")
	<-sp.started
	queued := r.Request("queued")
	cancel()
	sp.release <- struct{}{}
	if rep, err := wait(t, last); err != nil || rep == nil || rep.PassID != 3 {
		t.Fatalf("in-flight pass at shutdown: %+v %v", rep, err)
	}
	<-done
	if rep, err := wait(t, queued); rep != nil || !errors.Is(err, ops.ErrStopped) {
		t.Fatalf("queued pass after shutdown: %+v %v", rep, err)
	}
	if rep, err := wait(t, r.Request("after")); rep != nil || !errors.Is(err, ops.ErrStopped) {
		t.Fatalf("request after shutdown: %+v %v", rep, err)
	}
}

// Operations are applied in the order they were submitted, in the runner's goroutine, before the
// pass they join; a refused one is answered with its error and, alone, runs no pass.
func TestRunnerAppliesOpsInOrderBeforeThePass(t *testing.T) {
	refused := errors.New("needed by lnd")
	sp := &slowPasser{started: make(chan struct{}, 10), release: make(chan struct{}, 10),
		refuse: map[string]error{"remove b": refused}}
	r := New(sp)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go r.Run(ctx)
	r.Request("startup")
	<-sp.started
	tks := []*ops.Ticket{r.Submit(ops.Op{Kind: ops.Remove, App: "a"}), r.Submit(ops.Op{Kind: ops.Remove, App: "b"}),
		r.Submit(ops.Op{Kind: ops.RotateSecret, App: "c", Name: "pw"})}
	sp.mu.Lock()
	if len(sp.applied) != 0 {
		t.Fatalf("applied during the running pass: %v", sp.applied)
	}
	sp.mu.Unlock()
	sp.release <- struct{}{}
	<-sp.started
	sp.release <- struct{}{}
	if _, err := wait(t, tks[1]); err != refused {
		t.Fatalf("refused op answered %v", err)
	}
	for _, i := range []int{0, 2} {
		if rep, err := wait(t, tks[i]); err != nil || rep.PassID != 2 || rep.Trigger != "remove,rotate-secret" {
			t.Fatalf("op %d: %+v %v", i, rep, err)
		}
	}
	if got := strings.Join(sp.applied, ", "); got != "remove a, remove b, rotate-secret c pw" {
		t.Fatalf("applied %s", got)
	}
	// A refused op alone runs no pass.
	if _, err := wait(t, r.Submit(ops.Op{Kind: ops.Remove, App: "b"})); err != refused {
		t.Fatal(err)
	}
	select {
	case <-sp.started:
		t.Fatal("a refused op ran a pass")
	case <-time.After(100 * time.Millisecond):
	}
}

// Waiting tickets cost no goroutine (before issue 15, each Request started one).
func TestTicketsCostNoGoroutine(t *testing.T) {
	sp := &slowPasser{started: make(chan struct{}, 10), release: make(chan struct{}, 10)}
	r := New(sp)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go r.Run(ctx)
	r.Request("startup")
	<-sp.started
	before := runtime.NumGoroutine()
	var tks []*ops.Ticket
	for i := 0; i < 1000; i++ {
		tks = append(tks, r.Request("dbus"))
	}
	if n := runtime.NumGoroutine(); n > before+5 {
		t.Fatalf("1000 queued tickets: %d goroutines, %d before", n, before)
	}
	sp.release <- struct{}{}
	<-sp.started
	sp.release <- struct{}{}
	for _, tk := range tks {
		wait(t, tk)
	}
}

// The stop: a pass in progress goes on for the stop grace, then its context is cancelled; a pass
// that ignores its cancellation makes the runner stop progressing (the watchdog is not fed).
func TestRunnerCancelsAfterTheStopGraceAndTellsProgress(t *testing.T) {
	sp := &slowPasser{started: make(chan struct{}, 10), release: make(chan struct{})}
	r := New(sp)
	r.StopGrace = 300 * time.Millisecond
	r.PassTimeout = time.Hour
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.Run(ctx); close(done) }()
	tk := r.Request("startup")
	<-sp.started
	if !r.Progressing(time.Now()) {
		t.Fatal("a pass that just started is not progressing")
	}
	if r.Progressing(time.Now().Add(time.Hour + time.Second)) {
		t.Fatal("a pass past its deadline and grace still counts as progressing")
	}
	t0 := time.Now()
	cancel()
	rep, err := wait(t, tk)
	if err != nil || rep == nil {
		t.Fatalf("cancelled pass: %v %v", rep, err)
	}
	if d := time.Since(t0); d < 250*time.Millisecond || d > 5*time.Second {
		t.Fatalf("pass cancelled %s after the stop, want the 300 ms grace", d)
	}
	sp.mu.Lock()
	if !errors.Is(sp.ctxErr, context.Canceled) {
		t.Fatalf("pass context: %v", sp.ctxErr)
	}
	sp.mu.Unlock()
	<-done
	if !r.Progressing(time.Now()) {
		t.Fatal("an idle runner is not progressing")
	}

	// The pass deadline.
	sp2 := &slowPasser{started: make(chan struct{}, 10), release: make(chan struct{})}
	r2 := New(sp2)
	r2.PassTimeout = 200 * time.Millisecond
	ctx2, cancel2 := context.WithCancel(context.Background())
	defer cancel2()
	go r2.Run(ctx2)
	if _, err := wait(t, r2.Request("startup")); err != nil {
		t.Fatal(err)
	}
	sp2.mu.Lock()
	defer sp2.mu.Unlock()
	if !errors.Is(sp2.ctxErr, context.DeadlineExceeded) {
		t.Fatalf("pass past its deadline: %v", sp2.ctxErr)
	}
}
