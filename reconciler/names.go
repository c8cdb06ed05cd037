package reconciler

import (
	"github.com/lockstep/lockstep/engine"
	"github.com/lockstep/lockstep/reconciler/plan"
	"github.com/lockstep/lockstep/report"
	"github.com/lockstep/lockstep/spec"
)

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
	StateStarting    = report.StateStarting

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

// What the reconciler needs of podman and systemd (package engine), under the names the executor
// uses.
type (
	Podman       = engine.Podman
	Systemd      = engine.Systemd
	Container    = engine.Container
	Inspected    = engine.Inspected
	BuildRequest = engine.BuildRequest
	APIError     = engine.APIError
)

// podman's classified errors (package engine).
var (
	ErrNotFound      = engine.ErrNotFound
	ErrConflict      = engine.ErrConflict
	ErrUnavailable   = engine.ErrUnavailable
	ErrImageNotFound = engine.ErrImageNotFound
	ErrNameInUse     = engine.ErrNameInUse
)

// The desired containers and their create requests (package spec).
type (
	CreateRequest = spec.CreateRequest
	Desired       = spec.Desired
	Wiring        = spec.Wiring
)

// Labels, hash scheme and network names (package spec).
const (
	LabelApp           = spec.LabelApp
	LabelSpecHash      = spec.LabelSpecHash
	LabelHashScheme    = spec.LabelHashScheme
	LabelContainer     = spec.LabelContainer
	HashScheme         = spec.HashScheme
	NetworkPrefix      = spec.NetworkPrefix
	ExportsSuffix      = spec.ExportsSuffix
	DefaultStopTimeout = spec.DefaultStopTimeout
)

// DesiredFor and DesiredsFor compute an app's containers (package spec).
var (
	DesiredFor  = spec.DesiredFor
	DesiredsFor = spec.DesiredsFor
)

// The plan (package plan), under the names the executor uses.
type (
	Action   = plan.Action
	Kind     = plan.Kind
	Input    = plan.Input
	Adoption = plan.Adoption
)

// The kinds of action (package plan).
const (
	KindNone          = plan.KindNone
	KindStart         = plan.KindStart
	KindInstall       = plan.KindInstall
	KindRecreate      = plan.KindRecreate
	KindForceRecreate = plan.KindForceRecreate
	KindAdopt         = plan.KindAdopt
	KindRemove        = plan.KindRemove
	KindHold          = plan.KindHold
	KindWait          = plan.KindWait
	KindRestart       = plan.KindRestart
	KindRollback      = plan.KindRollback
)

// Plan decides what a pass does for each container, Order in which waves (package plan).
var (
	Plan  = plan.Plan
	Order = plan.Order
)
