package reconciler

import (
	"context"
	"sort"
	"strings"
	"sync"
)

// Passer runs one pass; *Reconciler is one.
type Passer interface {
	Pass(ctx context.Context, trigger string) *Report
}

// Runner is the one goroutine that runs passes. D-Bus calls, timers, start-up and events only Request a
// pass; requests that arrive while a pass runs coalesce into the next one.
type Runner struct {
	p    Passer
	kick chan struct{}

	// Started and Finished, when set before Run, are called from the runner's goroutine around each
	// pass (for D-Bus properties and signals).
	Started  func(trigger string)
	Finished func(*Report)

	mu      sync.Mutex
	next    *ticket // the pass that will start next; nil when none is queued
	running bool
	closed  bool
}

type ticket struct {
	triggers map[string]bool
	done     chan struct{}
	report   *Report
}

// NewRunner returns a runner for p; call Run to start it.
func NewRunner(p Passer) *Runner {
	return &Runner{p: p, kick: make(chan struct{}, 1)}
}

// Request queues a pass that starts after this call (joining one already queued) and returns a channel
// that yields its report. After Run has returned, the channel yields nil.
func (r *Runner) Request(trigger string) <-chan *Report {
	out := make(chan *Report, 1)
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		out <- nil
		return out
	}
	if r.next == nil {
		r.next = &ticket{triggers: map[string]bool{}, done: make(chan struct{})}
	}
	t := r.next
	t.triggers[trigger] = true
	r.mu.Unlock()
	select {
	case r.kick <- struct{}{}:
	default:
	}
	go func() {
		<-t.done
		out <- t.report
	}()
	return out
}

// Busy tells whether a pass is running now.
func (r *Runner) Busy() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.running
}

// Run runs queued passes until ctx is done. A pass in progress when ctx ends is finished first (a pull
// or build is never cut in half); passes still queued then are answered with nil.
func (r *Runner) Run(ctx context.Context) {
	for {
		// A stop wins over queued work: check it first, as select picks at random among ready cases.
		if ctx.Err() != nil {
			r.close()
			return
		}
		select {
		case <-ctx.Done():
			r.close()
			return
		case <-r.kick:
		}
		r.mu.Lock()
		t := r.next
		r.next = nil
		if t != nil {
			r.running = true
		}
		r.mu.Unlock()
		if t == nil {
			continue
		}
		trigger := joinTriggers(t.triggers)
		if r.Started != nil {
			r.Started(trigger)
		}
		t.report = r.p.Pass(context.WithoutCancel(ctx), trigger)
		r.mu.Lock()
		r.running = false
		r.mu.Unlock()
		if r.Finished != nil {
			r.Finished(t.report)
		}
		close(t.done)
	}
}

func (r *Runner) close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = true
	if r.next != nil {
		close(r.next.done)
		r.next = nil
	}
}

func joinTriggers(m map[string]bool) string {
	s := make([]string, 0, len(m))
	for k := range m {
		s = append(s, k)
	}
	sort.Strings(s)
	return strings.Join(s, ",")
}
