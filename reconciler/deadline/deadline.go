package deadline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/lockstep/lockstep/engine"
	"github.com/lockstep/lockstep/outcome"
	"github.com/lockstep/lockstep/spec"
)

// Timeouts bound how long a pass waits for each podman call and each companion systemd call. The
// pass as a whole has the runner's deadline (runner.Runner.PassTimeout); a call is also cut short by
// it.
type Timeouts struct {
	// Call bounds one short call: list, inspect, create, start, remove, a network or an image check
	// (default CallTimeout). A stop gets Call plus the container's stop grace.
	Call time.Duration
	// Pull bounds one pull or build (default PullTimeout).
	Pull time.Duration
}

// Default timeouts.
const (
	CallTimeout = 2 * time.Minute
	PullTimeout = 30 * time.Minute
	// unknownGrace is the stop grace assumed for a container whose manifest is gone (an uninstalled
	// app): podman stops it with its own stop timeout, which lockstep no longer knows.
	unknownGrace = 10 * time.Minute
)

// WithDefaults fills in the default of each zero deadline.
func (t Timeouts) WithDefaults() Timeouts {
	if t.Call <= 0 {
		t.Call = CallTimeout
	}
	if t.Pull <= 0 {
		t.Pull = PullTimeout
	}
	return t
}

type graceKey struct{}

// WithGrace tells Stop the stop grace of the container it stops.
func WithGrace(ctx context.Context, d time.Duration) context.Context {
	return context.WithValue(ctx, graceKey{}, d)
}

// timed is a Podman whose every call has a deadline; a call cut short by it, or by the pass's,
// fails with outcome.ErrTimeout (or outcome.ErrCancelled on a stop), naming the call and the deadline.
type timed struct {
	p engine.Podman
	t Timeouts
}

var _ engine.Podman = timed{}

// Unwrap returns the Podman under the deadlines, for its optional interfaces (the caller gives
// their calls a deadline itself).
func (t timed) Unwrap() engine.Podman { return t.p }

// Podman returns p with every call under its deadline.
func Podman(p engine.Podman, t Timeouts) engine.Podman { return timed{p, t.WithDefaults()} }

// Systemd returns s with every call under its deadline.
func Systemd(s engine.Systemd, t Timeouts) engine.Systemd { return timedSystemd{s, t.WithDefaults()} }

// HealthChecker runs a container's health check (podman's RunHealthCheck).
type HealthChecker interface {
	RunHealthCheck(ctx context.Context, nameOrID string) (status string, failingStreak int, err error)
}

// Health returns hc with every check under a deadline of d.
func Health(hc HealthChecker, d time.Duration) HealthChecker { return timedHealth{hc, d} }

// call runs the podman call f under a deadline of d.
func (t timed) call(ctx context.Context, what string, d time.Duration, f func(context.Context) error) error {
	return t.callAs(ctx, "podman "+what, d, f)
}

// callAs runs f under a deadline of d; what names the call in an error.
func (timed) callAs(ctx context.Context, what string, d time.Duration, f func(context.Context) error) error {
	cctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	err := f(cctx)
	if err == nil {
		return nil
	}
	switch {
	case errors.Is(ctx.Err(), context.Canceled):
		return fmt.Errorf("%w (%s)", outcome.ErrCancelled, what)
	case ctx.Err() != nil:
		return fmt.Errorf("%w: %s: the pass ran past its deadline", outcome.ErrTimeout, what)
	case cctx.Err() != nil:
		return fmt.Errorf("%w: %s gave no answer within %s", outcome.ErrTimeout, what, d)
	}
	return err
}

func (t timed) List(ctx context.Context) (cs []engine.Container, err error) {
	err = t.call(ctx, "list", t.t.Call, func(ctx context.Context) error { cs, err = t.p.List(ctx); return err })
	return cs, err
}

func (t timed) Inspect(ctx context.Context, id string) (in *engine.Inspected, err error) {
	err = t.call(ctx, "inspect", t.t.Call, func(ctx context.Context) error { in, err = t.p.Inspect(ctx, id); return err })
	return in, err
}

func (t timed) ImageExists(ctx context.Context, ref string) (ok bool, err error) {
	err = t.call(ctx, "image exists", t.t.Call, func(ctx context.Context) error { ok, err = t.p.ImageExists(ctx, ref); return err })
	return ok, err
}

func (t timed) Pull(ctx context.Context, ref string, tlsVerify bool, progress io.Writer) error {
	return t.call(ctx, "pull", t.t.Pull, func(ctx context.Context) error { return t.p.Pull(ctx, ref, tlsVerify, progress) })
}

func (t timed) Build(ctx context.Context, b engine.BuildRequest) error {
	return t.call(ctx, "build", t.t.Pull, func(ctx context.Context) error { return t.p.Build(ctx, b) })
}

func (t timed) RemoveImage(ctx context.Context, ref string) error {
	return t.call(ctx, "remove image", t.t.Call, func(ctx context.Context) error { return t.p.RemoveImage(ctx, ref) })
}

func (t timed) Create(ctx context.Context, c spec.CreateRequest) (id string, err error) {
	err = t.call(ctx, "create", t.t.Call, func(ctx context.Context) error { id, err = t.p.Create(ctx, c); return err })
	return id, err
}

func (t timed) Start(ctx context.Context, id string) error {
	return t.call(ctx, "start", t.t.Call, func(ctx context.Context) error { return t.p.Start(ctx, id) })
}

func (t timed) Stop(ctx context.Context, id string, timeout time.Duration) error {
	grace := timeout
	if grace <= 0 {
		grace = unknownGrace
		if g, ok := ctx.Value(graceKey{}).(time.Duration); ok && g > 0 {
			grace = g
		}
	}
	return t.call(ctx, "stop", t.t.Call+grace, func(ctx context.Context) error { return t.p.Stop(ctx, id, timeout) })
}

func (t timed) Remove(ctx context.Context, id string) error {
	return t.call(ctx, "remove", t.t.Call, func(ctx context.Context) error { return t.p.Remove(ctx, id) })
}

func (t timed) EnsureNetwork(ctx context.Context, name, app string) error {
	return t.call(ctx, "network", t.t.Call, func(ctx context.Context) error { return t.p.EnsureNetwork(ctx, name, app) })
}

// timedHealth bounds one health check run by the monitor.
type timedHealth struct {
	hc HealthChecker
	d  time.Duration
}

func (t timedHealth) RunHealthCheck(ctx context.Context, nameOrID string) (string, int, error) {
	cctx, cancel := context.WithTimeout(ctx, t.d)
	defer cancel()
	s, n, err := t.hc.RunHealthCheck(cctx, nameOrID)
	if err != nil && ctx.Err() == nil && cctx.Err() != nil {
		// podman not answering says nothing of the container's health: the monitor skips it.
		err = fmt.Errorf("%w: %w: podman health check gave no answer within %s", engine.ErrUnavailable, outcome.ErrTimeout, t.d)
	}
	return s, n, err
}

// timedSystemd bounds the companion stage's systemd calls: a start or restart may pull the image
// (Quadlet units pull before they start) and gets the pull deadline; a stop gets the call deadline
// plus the longest stop grace assumed for a unit; the rest the call deadline.
type timedSystemd struct {
	s engine.Systemd
	t Timeouts
}

var _ engine.Systemd = timedSystemd{}

func (t timedSystemd) call(ctx context.Context, what string, d time.Duration, f func(context.Context) error) error {
	return timed{t: t.t}.callAs(ctx, "systemd "+what, d, f)
}

func (t timedSystemd) Reload(ctx context.Context) error {
	return t.call(ctx, "daemon-reload", t.t.Call, t.s.Reload)
}

func (t timedSystemd) Start(ctx context.Context, unit string) error {
	return t.call(ctx, "start "+unit, t.t.Pull, func(ctx context.Context) error { return t.s.Start(ctx, unit) })
}

func (t timedSystemd) Restart(ctx context.Context, unit string) error {
	return t.call(ctx, "restart "+unit, t.t.Pull, func(ctx context.Context) error { return t.s.Restart(ctx, unit) })
}

func (t timedSystemd) Stop(ctx context.Context, unit string) error {
	return t.call(ctx, "stop "+unit, t.t.Call+unknownGrace, func(ctx context.Context) error { return t.s.Stop(ctx, unit) })
}

func (t timedSystemd) ResetFailed(ctx context.Context, unit string) error {
	return t.call(ctx, "reset-failed "+unit, t.t.Call, func(ctx context.Context) error { return t.s.ResetFailed(ctx, unit) })
}

func (t timedSystemd) State(ctx context.Context, unit string) (st engine.UnitState, err error) {
	err = t.call(ctx, "state of "+unit, t.t.Call, func(ctx context.Context) error { st, err = t.s.State(ctx, unit); return err })
	return st, err
}
