package reconciler

import (
	"github.com/lockstep/lockstep/outcome"
	"github.com/lockstep/lockstep/reconciler/deadline"
)

// Timeouts bound each podman and companion systemd call of a pass (package deadline).
type Timeouts = deadline.Timeouts

// Default timeouts (package deadline).
const (
	CallTimeout = deadline.CallTimeout
	PullTimeout = deadline.PullTimeout
)

// Classes of failure a deadline gives (package outcome's); Failure.Class in the report.
var (
	ErrTimeout   = outcome.ErrTimeout
	ErrCancelled = outcome.ErrCancelled
)

// Failure classes.
const (
	ClassTimeout   = outcome.ClassTimeout
	ClassCancelled = outcome.ClassCancelled
)
