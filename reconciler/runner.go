package reconciler

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"
)

// Passer runs passes and applies operations; *Reconciler is one. The runner calls both from its one
// goroutine, never concurrently.
type Passer interface {
	Pass(ctx context.Context, trigger string) *Report
	// Apply checks op against the world as it is now and makes its change; an error refuses it and
	// changes nothing.
	Apply(ctx context.Context, op Op) error
}

// OpKind names an operation on the installed set.
type OpKind string

// Operations. Each is applied by the runner at the start of a pass, check and effect in its goroutine,
// so no two of them, nor one and a pass, ever interleave. Stop and start of an app (issue 16) are to
// be kinds of their own, applied the same way.
const (
	OpInstall      OpKind = "install"       // App: link catalog app App into the apps dir
	OpRemove       OpKind = "remove"        // App: unlink it; the pass removes its containers
	OpPurge        OpKind = "purge"         // App: delete its data, secrets and unused images
	OpRotateSecret OpKind = "rotate-secret" // App, Name: give the secret a new value
	OpReload       OpKind = "reload"        // read every manifest again (SIGHUP)
)

// Op is one operation queued to the runner.
type Op struct {
	Kind OpKind
	App  string // the app it is about ("" for reload)
	Name string // the secret, for OpRotateSecret
}

func (o Op) String() string {
	s := string(o.Kind)
	if o.App != "" {
		s += " " + o.App
	}
	if o.Name != "" {
		s += " " + o.Name
	}
	return s
}

// ErrStopped answers a ticket whose pass never ran: the runner stopped first.
var ErrStopped = errors.New("lockstepd is shutting down; the pass did not run")

// Ticket is a queued request for a pass, carrying an operation or not. It is answered once: with the
// op's error (the pass is not waited for), or with the report of the pass that followed the op, or
// with ErrStopped. Waiting on a ticket costs no goroutine.
type Ticket struct {
	op     *Op
	done   chan struct{}
	report *Report
	err    error
}

// Done is closed when the ticket is answered.
func (t *Ticket) Done() <-chan struct{} { return t.done }

// Result returns the report and error; call it after Done is closed.
func (t *Ticket) Result() (*Report, error) { return t.report, t.err }

// Wait waits for the answer, or for ctx (then it returns ctx's error; the ticket stays queued).
func (t *Ticket) Wait(ctx context.Context) (*Report, error) {
	select {
	case <-t.done:
		return t.report, t.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (t *Ticket) answer(rep *Report, err error) {
	t.report, t.err = rep, err
	close(t.done)
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
	Finished func(*Report)
	// PassTimeout bounds one pass, the operations applied before it included (default PassTimeout).
	PassTimeout time.Duration
	// StopGrace is how long a pass in progress when Run's ctx ends may go on before it is cancelled
	// (default StopGrace). A cancelled pass still reports and saves its report.
	StopGrace time.Duration

	mu      sync.Mutex
	next    *batch // the tickets of the pass that will start next; nil when none is queued
	running time.Time
	closed  bool
}

type batch struct {
	triggers map[string]bool
	tickets  []*Ticket
}

// Defaults of the runner's deadlines.
const (
	PassTimeout = time.Hour
	StopGrace   = 5 * time.Minute
)

// NewRunner returns a runner for p; call Run to start it.
func NewRunner(p Passer) *Runner {
	return &Runner{p: p, kick: make(chan struct{}, 1)}
}

// Request queues a pass that starts after this call (joining one already queued).
func (r *Runner) Request(trigger string) *Ticket { return r.queue(trigger, nil) }

// Submit queues op, applied at the start of the next pass in the order ops were submitted.
func (r *Runner) Submit(op Op) *Ticket { return r.queue(string(op.Kind), &op) }

// Do submits op and waits for its answer: the report of the pass that followed it, or its error.
func (r *Runner) Do(ctx context.Context, op Op) (*Report, error) { return r.Submit(op).Wait(ctx) }

func (r *Runner) queue(trigger string, op *Op) *Ticket {
	t := &Ticket{op: op, done: make(chan struct{})}
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		t.answer(nil, ErrStopped)
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
	return !r.running.IsZero()
}

// Progressing tells whether the runner is making progress: it is idle, or its pass started less than
// the pass deadline and the stop grace ago. A pass past both ignores its cancellation: the daemon is
// hung and stops feeding the watchdog.
func (r *Runner) Progressing(now time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.running.IsZero() || now.Sub(r.running) < r.passTimeout()+r.stopGrace()
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
// tickets still queued then are answered with ErrStopped.
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
		if b != nil {
			r.running = time.Now()
		}
		r.mu.Unlock()
		if b != nil {
			r.run(base, b)
		}
		r.mu.Lock()
		r.running = time.Time{}
		r.mu.Unlock()
	}
}

// run applies b's operations in order, then runs the pass, unless every ticket was an op that was
// refused.
func (r *Runner) run(base context.Context, b *batch) {
	ctx, cancel := context.WithTimeout(base, r.passTimeout())
	defer cancel()
	var waiting []*Ticket
	triggers := map[string]bool{}
	for _, t := range b.tickets {
		if t.op == nil {
			waiting = append(waiting, t)
			continue
		}
		if err := r.apply(ctx, *t.op); err != nil {
			t.answer(nil, err)
			continue
		}
		triggers[string(t.op.Kind)] = true
		waiting = append(waiting, t)
	}
	if len(waiting) == 0 {
		return
	}
	for tr := range b.triggers {
		if !isOpKind(tr) || triggers[tr] {
			triggers[tr] = true
		}
	}
	trigger := joinTriggers(triggers)
	if r.Started != nil {
		r.Started(trigger)
	}
	rep := r.p.Pass(ctx, trigger)
	if r.Finished != nil {
		r.Finished(rep)
	}
	for _, t := range waiting {
		t.answer(rep, nil)
	}
}

// apply runs one op, turning a panic into its error: a bad op must not take the runner down.
func (r *Runner) apply(ctx context.Context, op Op) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("%s: %v", op, v)
		}
	}()
	return r.p.Apply(ctx, op)
}

func isOpKind(s string) bool {
	switch OpKind(s) {
	case OpInstall, OpRemove, OpPurge, OpRotateSecret, OpReload:
		return true
	}
	return false
}

func (r *Runner) close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = true
	if r.next != nil {
		for _, t := range r.next.tickets {
			t.answer(nil, ErrStopped)
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
