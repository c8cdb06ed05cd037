package reconciler

import (
	"github.com/lockstep/lockstep/ops"
	"github.com/lockstep/lockstep/reconciler/runner"
)

// The Runner and its operations are packages runner's and ops's; these names keep the engine's code
// and its callers short.
type (
	Runner = runner.Runner
	Passer = runner.Passer
	Op     = ops.Op
	OpKind = ops.Kind
	Ticket = ops.Ticket
)

// NewRunner returns a runner for p (runner.New).
func NewRunner(p Passer) *Runner { return runner.New(p) }

// Operation kinds (package ops).
const (
	OpInstall      = ops.Install
	OpRemove       = ops.Remove
	OpPurge        = ops.Purge
	OpRotateSecret = ops.RotateSecret
	OpReload       = ops.Reload
)

// ErrStopped answers a ticket whose pass never ran.
var ErrStopped = ops.ErrStopped

// Runner deadlines' defaults (package runner).
const (
	PassTimeout = runner.PassTimeout
	StopGrace   = runner.StopGrace
)
