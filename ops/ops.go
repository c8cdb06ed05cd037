package ops

import (
	"context"
	"fmt"

	"github.com/lockstep/lockstep/outcome"
	"github.com/lockstep/lockstep/report"
)

// Kind names an operation on the installed set.
type Kind string

// Operations. The runner (reconciler.Runner) applies each at the start of a pass, check and effect in
// its goroutine, so no two of them, nor one and a pass, ever interleave. Stop and start of an app are
// to be kinds of their own, applied the same way.
const (
	Install      Kind = "install"       // App: link catalog app App into the apps dir
	Remove       Kind = "remove"        // App: unlink it; the pass removes its containers
	Purge        Kind = "purge"         // App: delete its data, secrets and unused images
	RotateSecret Kind = "rotate-secret" // App, Name: give the secret a new value
	Reload       Kind = "reload"        // read every manifest again (SIGHUP)
)

// Known tells whether k is an operation kind (and not a pass's trigger).
func Known(k Kind) bool {
	switch k {
	case Install, Remove, Purge, RotateSecret, Reload:
		return true
	}
	return false
}

// Op is one operation queued to the runner.
type Op struct {
	Kind Kind
	App  string // the app it is about ("" for reload)
	Name string // the secret, for RotateSecret
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
var ErrStopped = fmt.Errorf("%w; the pass did not run", outcome.ErrShuttingDown)

// Ticket is a queued request for a pass, carrying an operation or not. It is answered once: with the
// op's error (the pass is not waited for), or with the report of the pass that followed the op, or
// with ErrStopped. Waiting on a ticket costs no goroutine.
type Ticket struct {
	op     *Op
	done   chan struct{}
	report *report.Report
	err    error
}

// NewTicket returns an unanswered ticket for op (nil: a pass only). Only the runner makes them.
func NewTicket(op *Op) *Ticket { return &Ticket{op: op, done: make(chan struct{})} }

// Op returns the ticket's operation, nil for a pass only.
func (t *Ticket) Op() *Op { return t.op }

// Answer answers the ticket; only the runner calls it, once.
func (t *Ticket) Answer(rep *report.Report, err error) {
	t.report, t.err = rep, err
	close(t.done)
}

// Done is closed when the ticket is answered.
func (t *Ticket) Done() <-chan struct{} { return t.done }

// Result returns the report and error; call it after Done is closed.
func (t *Ticket) Result() (*report.Report, error) { return t.report, t.err }

// Wait waits for the answer, or for ctx (then it returns ctx's error; the ticket stays queued).
func (t *Ticket) Wait(ctx context.Context) (*report.Report, error) {
	select {
	case <-t.done:
		return t.report, t.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}
