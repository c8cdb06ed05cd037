package report

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"time"

	"github.com/lockstep/lockstep/internal/atomicfile"
	"github.com/lockstep/lockstep/outcome"
)

// Report is the record of one pass. It is what Report() on D-Bus, lockstepd --once and the report file
// give; its JSON form is documented in docs/architecture.md.
type Report struct {
	PassID     uint64      `json:"pass_id"`
	Trigger    string      `json:"trigger"`
	StartedAt  time.Time   `json:"started_at"`
	FinishedAt time.Time   `json:"finished_at"`
	Actions    []ActionRec `json:"actions"`
	Failures   []Failure   `json:"failures"`
	Apps       []AppStatus `json:"apps"`
	Companions []AppStatus `json:"companions"`
	// CompanionMode says how companions are run: quadlet, service (plain units, for podman without a
	// Quadlet generator) or none (no companion stage).
	CompanionMode string `json:"companion_mode"`
	// HostProblems are what the host's podman cannot do for the installed apps (package hostcheck):
	// each with its fix and the apps it affects (each of which also has a failure saying so).
	HostProblems []HostProblem `json:"host_problems"`
}

// HostProblem is one thing the host's podman cannot do that installed apps (or lockstep's exports)
// need; package hostcheck finds them.
type HostProblem struct {
	// Code names the problem for programs (hostcheck's Code* constants).
	Code string `json:"code"`
	// Message says what is wrong and what it breaks.
	Message string `json:"message"`
	// Fix says what fixes it, naming the Debian package where one does.
	Fix string `json:"fix"`
	// Apps are the installed apps it affects, sorted; empty when it affects none now.
	Apps []string `json:"apps"`
}

// ActionRec is an action a pass took.
type ActionRec struct {
	App    string `json:"app"`
	Action string `json:"action"`
	Cause  string `json:"cause"`
}

// Failure is something a pass could not do: what it is about (its subject: an app, one container
// of a stack, a companion, a manifest file, the whole pass), the class of what went wrong, and the
// message, which says it for people.
type Failure struct {
	// App is the app the failure belongs to: the app of a container or companion, a manifest file's
	// name without .yaml, "" for the whole pass.
	App   string `json:"app"`
	Error string `json:"error"`
	// Class is the failure's class (outcome's table: timeout, podman-unavailable, failed, ...). A
	// report saved by a lockstepd before classes has none but for timeouts and cancellations.
	Class outcome.Class `json:"class,omitempty"`
	// Subject is what the failure is about; Name names it when it is not the app itself: a stack
	// container's name, a companion's id, a manifest's file. Absent in reports of older lockstepds.
	Subject outcome.Subject `json:"subject,omitempty"`
	Name    string          `json:"name,omitempty"`
}

// Who names a failure for people (lockstepctl): its app, "(pass)" for none; a companion's id after
// it; its class's word (outcome's table) in parentheses when it has a class.
func (f Failure) Who() string {
	who := f.App
	if who == "" {
		who = "(pass)"
	}
	if f.Subject == outcome.SubjectCompanion && f.Name != "" {
		who += " companion " + f.Name
	}
	if f.Class != "" {
		who += " (" + f.Class.Word() + ")"
	}
	return who
}

// App states in a report.
const (
	StateRunning = "running"
	StateMissing = "missing"
	StateInvalid = "invalid" // the manifest is invalid; the container is held as it was
	StateForeign = "foreign" // a container lockstep did not create holds the app's name
	StateFailed  = "failed"  // the pass's action for it failed
	StateUnknown = "unknown" // podman could not be asked
	StateRemoved = "removed" // uninstalled this pass
	// StateUnreachable is a running app whose published port does not answer.
	StateUnreachable = "unreachable"
	// StateStarting is an app without a health check that the pass started whose published port did
	// not answer yet when the pass ended; the pass it asks for probes again.
	StateStarting = "starting"
	// StateRolledBack is an app whose manifest asks for a spec that failed and was rolled back: it
	// runs its last known-good spec until the manifest changes.
	StateRolledBack = "rolled-back"
)

// Health states in a report.
const (
	HealthUnknown   = "unknown" // never evaluated: not "healthy"
	HealthStarting  = "starting"
	HealthHealthy   = "healthy"
	HealthUnhealthy = "unhealthy"
	HealthNone      = "none" // the manifest declares no health check
)

// AppStatus is one app's (or companion's) state at the end of a pass.
type AppStatus struct {
	ID string `json:"id"`
	// App is the app a companion belongs to (companion rows only): ids do not say it, since app web's
	// companion and app web-api are both web-something.
	App         string `json:"app,omitempty"`
	State       string `json:"state"`
	Health      string `json:"health"`
	Image       string `json:"image"`
	ContainerID string `json:"container_id"`
	LastAction  string `json:"last_action,omitempty"`
	// NextAttempt is when a restart held back by backoff is due (RFC 3339), if one is.
	NextAttempt string `json:"next_attempt,omitempty"`
	// Containers holds a stack's containers, in start order (absent for a one-container app, whose
	// row is its container). The app's state and health are its worst container's.
	Containers []ContainerStatus `json:"containers,omitempty"`
}

// ContainerStatus is one container of a stack at the end of a pass.
type ContainerStatus struct {
	Name        string `json:"name"`
	State       string `json:"state"`
	Health      string `json:"health"`
	Image       string `json:"image"`
	ContainerID string `json:"container_id"`
	LastAction  string `json:"last_action,omitempty"`
}

// SameContent tells whether two reports say the same thing, ignoring pass id, trigger and times, so
// that identical no-op passes are not a change.
func SameContent(a, b *Report) bool {
	if a == nil || b == nil {
		return a == b
	}
	x, y := *a, *b
	x.PassID, y.PassID = 0, 0
	x.Trigger, y.Trigger = "", ""
	x.StartedAt, y.StartedAt = time.Time{}, time.Time{}
	x.FinishedAt, y.FinishedAt = time.Time{}, time.Time{}
	return reflect.DeepEqual(normalize(x), normalize(y))
}

func normalize(r Report) Report {
	if r.Actions == nil {
		r.Actions = []ActionRec{}
	}
	if r.Failures == nil {
		r.Failures = []Failure{}
	}
	if r.Apps == nil {
		r.Apps = []AppStatus{}
	}
	if r.Companions == nil {
		r.Companions = []AppStatus{}
	}
	if r.HostProblems == nil {
		r.HostProblems = []HostProblem{}
	}
	return r
}

// MarshalJSON writes empty lists as [] rather than null, for clients that iterate without checking.
func (r Report) MarshalJSON() ([]byte, error) {
	type plain Report
	return json.Marshal(plain(normalize(r)))
}

const reportFile = "report.json"

// SaveReport writes r to dir atomically.
func SaveReport(dir string, r *Report) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding report: %w", err)
	}
	return atomicfile.Write(filepath.Join(dir, reportFile), append(b, '\n'), 0o644)
}

// LoadReport reads the report saved in dir; nil and no error when there is none.
func LoadReport(dir string) (*Report, error) {
	b, err := os.ReadFile(filepath.Join(dir, reportFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading report: %w", err)
	}
	var r Report
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("reading report %s: %w", filepath.Join(dir, reportFile), err)
	}
	Clean(&r) // written by an older lockstepd, perhaps
	return &r, nil
}

// Redact passes every message of the report (actions' causes, failures, host problems) through f,
// which hides secret values (the reconciler's secret store): the backstop that keeps a secret a
// message quoted by mistake out of report.json, the D-Bus Report and the HTTP socket.
func (r *Report) Redact(f func(string) string) {
	for i := range r.Actions {
		r.Actions[i].Cause = f(r.Actions[i].Cause)
	}
	for i := range r.Failures {
		r.Failures[i].Error = f(r.Failures[i].Error)
	}
	for i := range r.HostProblems {
		r.HostProblems[i].Message = f(r.HostProblems[i].Message)
	}
}
