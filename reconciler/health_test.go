package reconciler

import (
	"context"
	"sync"
	"testing"
	"time"

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
	r := newTestReconciler(t, &fakePodman{images: map[string]bool{}}, nil)
	old := time.Now().Add(-time.Hour)
	target := func(fresh bool) map[string]healthTarget {
		return map[string]healthTarget{"web": {app: "web", container: "web", interval: time.Hour, retries: 1, started: old, fresh: fresh}}
	}
	r.setHealthTargets(target(false))
	hc := &blockingChecker{started: make(chan struct{}), release: make(chan struct{})}
	var mu sync.Mutex
	var changes []string
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.RunHealthChecks(ctx, hc, func(app, status string) {
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
	r.restartedHealth("web")
	r.setHealthTargets(target(true))
	close(hc.release)
	time.Sleep(300 * time.Millisecond) // the monitor writes (or drops) the stale result
	cancel()
	<-done
	if h, _ := r.healthOf("web"); h == report.HealthUnhealthy {
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
