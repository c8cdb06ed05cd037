package runner

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/lockstep/lockstep/ops"
	"github.com/lockstep/lockstep/report"
)

// Passer runs passes and applies operations; *reconciler.Reconciler is one. The runner calls both from its one
// goroutine, never concurrently.
type Passer interface {
	Pass(ctx context.Context, trigger string) *report.Report
	// Apply checks op against the world as it is now and makes its change; an error refuses it and
	// changes nothing.
	Apply(ctx context.Context, op ops.Op) error
}

// Runner is the one goroutine that changes the world: it applies queued operations and runs passes.
// D-Bus and HTTP calls, timers, start-up and events only queue tickets; tickets that arrive while a
// pass runs join the next one.
type Runner struct {
	p    Passer
	kick chan struct{}

	// Started and Finished, when set before Run, are called from the runner's goroutine around each
	// pass (for D-Bus properties and signals).
	Started  func(trigger string)
	Finished func(*report.Report)
	// PassTimeout bounds one pass, and on their own the operations applied before it (default
	// PassTimeout).
	PassTimeout time.Duration
	// StopGrace is how long a pass in progress when Run's ctx ends may go on before it is cancelled
	// (default StopGrace). A cancelled pass still reports and saves its report.
	StopGrace time.Duration

	mu          sync.Mutex
	next        *batch    // the tickets of the pass that will start next; nil when none is queued
	running     bool      // ops or a pass in progress
	passStarted time.Time // when the pass in progress started (after its ops); zero when none runs
	closed      bool
}

type batch struct {
	triggers map[string]bool
	tickets  []*ops.Ticket
}

// Defaults of the runner's deadlines.
const (
	PassTimeout = time.Hour
	StopGrace   = 5 * time.Minute
)

// New returns a runner for p; call Run to start it.
func New(p Passer) *Runner {
	return &Runner{p: p, kick: make(chan struct{}, 1)}
}

// Request queues a pass that starts after this call (joining one already queued).
func (r *Runner) Request(trigger string) *ops.Ticket { return r.queue(trigger, nil) }

// Submit queues op, applied at the start of the next pass in the order ops were submitted.
func (r *Runner) Submit(op ops.Op) *ops.Ticket { return r.queue(string(op.Kind), &op) }

// Do submits op and waits for its answer: the report of the pass that followed it, or its error.
func (r *Runner) Do(ctx context.Context, op ops.Op) (*report.Report, error) {
	return r.Submit(op).Wait(ctx)
}

func (r *Runner) queue(trigger string, op *ops.Op) *ops.Ticket {
	t := ops.NewTicket(op)
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		t.Answer(nil, ops.ErrStopped)
		return t
	}
	if r.next == nil {
		r.next = &batch{triggers: map[string]bool{}}
	}
	r.next.triggers[trigger] = true
	r.next.tickets = append(r.next.tickets, t)
	r.mu.Unlock()
	select {
	case r.kick <- struct{}{}:
	default:
	}
	return t
}

// Busy tells whether a pass is running now.
func (r *Runner) Busy() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.running
}

// Progressing tells whether the runner is making progress: no pass runs, or the pass started less
// than the pass deadline and the stop grace ago. A pass past both ignores its cancellation: the daemon
// is hung and stops feeding the watchdog. The operations before a pass do not count: each of their
// calls has a deadline, and what has none (a purge deleting a large data dir) is progress, not a hang.
func (r *Runner) Progressing(now time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.passStarted.IsZero() || now.Sub(r.passStarted) < r.passTimeout()+r.stopGrace()
}

func (r *Runner) passTimeout() time.Duration {
	if r.PassTimeout > 0 {
		return r.PassTimeout
	}
	return PassTimeout
}

func (r *Runner) stopGrace() time.Duration {
	if r.StopGrace > 0 {
		return r.StopGrace
	}
	return StopGrace
}

// Run applies queued operations and runs passes until ctx is done. A pass in progress when ctx ends
// goes on for the stop grace, then is cancelled (its actions fail as cancelled and it reports);
// tickets still queued then are answered with ops.ErrStopped.
func (r *Runner) Run(ctx context.Context) {
	// Passes are cancelled StopGrace after ctx ends, not at once: a pull or build is not cut in
	// half by a stop that leaves it time to finish.
	base, cancelBase := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelBase()
	stop := context.AfterFunc(ctx, func() { time.AfterFunc(r.stopGrace(), cancelBase) })
	defer stop()
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
		b := r.next
		r.next = nil
		r.running = b != nil
		r.mu.Unlock()
		if b != nil {
			r.run(base, b)
		}
		r.mu.Lock()
		r.running, r.passStarted = false, time.Time{}
		r.mu.Unlock()
	}
}

// run applies b's operations in order, then runs the pass, unless every ticket was an op that was
// refused.
func (r *Runner) run(base context.Context, b *batch) {
	// The ops have a deadline of their own (the pass deadline again), so that a long purge does not
	// shorten the pass after it.
	octx, ocancel := context.WithTimeout(base, r.passTimeout())
	defer ocancel()
	var waiting []*ops.Ticket
	triggers := map[string]bool{}
	for _, t := range b.tickets {
		op := t.Op()
		if op == nil {
			waiting = append(waiting, t)
			continue
		}
		if err := r.apply(octx, *op); err != nil {
			t.Answer(nil, err)
			continue
		}
		triggers[string(op.Kind)] = true
		waiting = append(waiting, t)
	}
	if len(waiting) == 0 {
		return
	}
	for tr := range b.triggers {
		if !ops.Known(ops.Kind(tr)) {
			triggers[tr] = true
		}
	}
	trigger := joinTriggers(triggers)
	ctx, cancel := context.WithTimeout(base, r.passTimeout())
	defer cancel()
	r.mu.Lock()
	r.passStarted = time.Now()
	r.mu.Unlock()
	if r.Started != nil {
		r.Started(trigger)
	}
	rep := r.p.Pass(ctx, trigger)
	if r.Finished != nil {
		r.Finished(rep)
	}
	for _, t := range waiting {
		t.Answer(rep, nil)
	}
}

// apply runs one op, turning a panic into its error: a bad op must not take the runner down.
func (r *Runner) apply(ctx context.Context, op ops.Op) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("%s: %v", op, v)
		}
	}()
	return r.p.Apply(ctx, op)
}

func (r *Runner) close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = true
	if r.next != nil {
		for _, t := range r.next.tickets {
			t.Answer(nil, ops.ErrStopped)
		}
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
