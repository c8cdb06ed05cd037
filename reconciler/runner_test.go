package reconciler

import (
	"context"
	"sync"
	"testing"
	"time"
)

type slowPasser struct {
	mu       sync.Mutex
	triggers []string
	started  chan struct{}
	release  chan struct{}
}

func (s *slowPasser) Pass(ctx context.Context, trigger string) *Report {
	s.mu.Lock()
	s.triggers = append(s.triggers, trigger)
	n := uint64(len(s.triggers))
	s.mu.Unlock()
	s.started <- struct{}{}
	<-s.release
	return &Report{PassID: n, Trigger: trigger}
}

func TestRunnerCoalescesTriggersIntoTheNextPass(t *testing.T) {
	sp := &slowPasser{started: make(chan struct{}, 10), release: make(chan struct{})}
	r := NewRunner(sp)
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
	if rep := <-first; rep.PassID != 1 {
		t.Fatalf("first got pass %d", rep.PassID)
	}
	<-sp.started
	sp.release <- struct{}{}
	for _, ch := range []<-chan *Report{a, b, c} {
		if rep := <-ch; rep.PassID != 2 || rep.Trigger != "dbus,timer" {
			t.Fatalf("got %+v, want pass 2 with triggers dbus,timer", rep)
		}
	}
	select {
	case <-sp.started:
		t.Fatal("an extra pass ran")
	case <-time.After(50 * time.Millisecond):
	}
	// A request while a pass runs at shutdown: the running pass finishes, the queued one gets nil.
	last := r.Request("late")
	<-sp.started
	queued := r.Request("queued")
	cancel()
	sp.release <- struct{}{}
	if rep := <-last; rep == nil || rep.PassID != 3 {
		t.Fatalf("in-flight pass at shutdown: %+v", rep)
	}
	<-done
	if rep := <-queued; rep != nil {
		t.Fatalf("queued pass after shutdown ran: %+v", rep)
	}
	if rep := <-r.Request("after"); rep != nil {
		t.Fatal("request after shutdown answered with a report")
	}
}
