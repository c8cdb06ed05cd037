package reconciler

import "github.com/lockstep/lockstep/report"

// The report's types and values, under the names the executor (reconciler.go), the Runner and
// install.go have always used. They live in package report; code outside this package uses them
// from there.
type (
	Report          = report.Report
	ActionRec       = report.ActionRec
	Failure         = report.Failure
	AppStatus       = report.AppStatus
	ContainerStatus = report.ContainerStatus
)

// States and health values of a report row (package report).
const (
	StateRunning     = report.StateRunning
	StateMissing     = report.StateMissing
	StateInvalid     = report.StateInvalid
	StateForeign     = report.StateForeign
	StateFailed      = report.StateFailed
	StateUnknown     = report.StateUnknown
	StateRemoved     = report.StateRemoved
	StateUnreachable = report.StateUnreachable
	StateRolledBack  = report.StateRolledBack

	HealthUnknown   = report.HealthUnknown
	HealthStarting  = report.HealthStarting
	HealthHealthy   = report.HealthHealthy
	HealthUnhealthy = report.HealthUnhealthy
	HealthNone      = report.HealthNone
)

// LoadReport and SaveReport read and write STATE-DIR/report.json (package report).
var (
	LoadReport = report.LoadReport
	SaveReport = report.SaveReport
)
