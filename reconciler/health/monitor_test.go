package health

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/lockstep/lockstep/report"
)

// blockingChecker holds its first check until released, then answers unhealthy; later checks answer
// healthy.
type blockingChecker struct {
	mu      sync.Mutex
	calls   int
	started chan struct{}
	release chan struct{}
}

func (b *blockingChecker) RunHealthCheck(ctx context.Context, name string) (string, int, error) {
	b.mu.Lock()
	b.calls++
	n := b.calls
	b.mu.Unlock()
	if n == 1 {
		close(b.started)
		<-b.release
		return report.HealthUnhealthy, 1, nil
	}
	return report.HealthHealthy, 0, nil
}

// A check that began before a pass restarted the container ends after it: its result is the old
// process's and is dropped, not written over the new one's health (which would restart it again).
func TestStaleHealthResultAfterRestartIsDropped(t *testing.T) {
	m := New()
	old := time.Now().Add(-time.Hour)
	target := func(fresh bool) map[string]Target {
		return map[string]Target{"web": {App: "web", Container: "web", Interval: time.Hour, Retries: 1, Started: old, Fresh: fresh}}
	}
	m.Set(target(false))
	hc := &blockingChecker{started: make(chan struct{}), release: make(chan struct{})}
	var mu sync.Mutex
	var changes []string
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	log := logrus.New()
	go func() {
		defer close(done)
		m.Run(ctx, hc, time.Minute, time.Now, log, func(app, status string) {
			mu.Lock()
			changes = append(changes, app+"="+status)
			mu.Unlock()
		})
	}()
	select {
	case <-hc.started:
	case <-time.After(5 * time.Second):
		t.Fatal("no health check ran")
	}
	// The pass restarts web meanwhile (do's KindRestart, then the targets at the end of the pass).
	m.Restarted("web")
	m.Set(target(true))
	close(hc.release)
	time.Sleep(300 * time.Millisecond) // the monitor writes (or drops) the stale result
	cancel()
	<-done
	if h, _ := m.Of("web"); h == report.HealthUnhealthy {
		t.Fatalf("the old container's result was written: web is %s", h)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, c := range changes {
		if c == "web="+report.HealthUnhealthy {
			t.Fatalf("the monitor announced the stale result: %v", changes)
		}
	}
}

// Streaks count across checks; failures in the start period do not; a snapshot shows each target,
// unknown until its first check.
func TestStreaksAndSnapshot(t *testing.T) {
	m := New()
	now := time.Now()
	m.Set(map[string]Target{"a": {App: "a", Container: "a", Retries: 2, Started: now.Add(-time.Minute)},
		"b": {App: "b", Container: "b", Retries: 2, Started: now, StartPeriod: time.Hour}})
	if s := m.Snapshot(); s["a"].Status != report.HealthUnknown || !s["a"].Since.Equal(now.Add(-time.Minute)) || len(s) != 2 {
		t.Fatalf("snapshot %+v", s)
	}
	fail := checkerFunc(func() (string, int, error) { return report.HealthUnhealthy, 1, nil })
	var seen []string
	changed := func(app, st string) { seen = append(seen, app+"="+st) }
	log := logrus.New()
	for i := 0; i < 2; i++ {
		m.mu.Lock()
		ta, tb := m.targets["a"], m.targets["b"]
		m.mu.Unlock()
		m.check(context.Background(), fail, ta, now, log, changed)
		m.check(context.Background(), fail, tb, now, log, changed)
	}
	if h, streak := m.Of("a"); h != report.HealthUnhealthy || streak != 2 {
		t.Fatalf("a: %s %d", h, streak)
	}
	if h, _ := m.Of("b"); h != report.HealthStarting {
		t.Fatalf("b in its start period: %s", h)
	}
	if len(seen) != 3 || seen[0] != "a=starting" {
		t.Fatalf("changes %v", seen)
	}
}

type checkerFunc func() (string, int, error)

func (f checkerFunc) RunHealthCheck(context.Context, string) (string, int, error) { return f() }
