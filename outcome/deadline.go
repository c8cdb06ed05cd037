package outcome

import (
	"context"
	"errors"
)

// Failures a deadline gives (issue 15): a pass, or a call in it, that ran out of time, or was
// cancelled by lockstepd's stop after the stop grace.
var (
	ErrTimeout   = errors.New("timed out")
	ErrCancelled = errors.New("cancelled: lockstepd is stopping")
)

// Classes of failure, report.Failure.Class.
const (
	ClassTimeout   = "timeout"
	ClassCancelled = "cancelled"
)

// Class returns the class of a failure's error, "" when it has none (yet: typed outcomes are to come).
func Class(err error) string {
	switch {
	case errors.Is(err, ErrTimeout), errors.Is(err, context.DeadlineExceeded):
		return ClassTimeout
	case errors.Is(err, ErrCancelled), errors.Is(err, context.Canceled):
		return ClassCancelled
	}
	return ""
}
