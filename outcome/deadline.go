package outcome

import "errors"

// Failures a deadline gives (issue 15): a pass, or a call in it, that ran out of time, or was
// cancelled by lockstepd's stop after the stop grace.
var (
	ErrTimeout   = errors.New("timed out")
	ErrCancelled = errors.New("cancelled: lockstepd is stopping")
)
