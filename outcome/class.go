package outcome

import (
	"context"
	"errors"
)

// Class is the class of a failure or of a refused request: what metrics count, what lockstepctl
// prints before the message and which D-Bus error a refusal is answered with all come from the one
// table below.
type Class string

// Classes.
const (
	ClassInvalidManifest   Class = "invalid-manifest"
	ClassNoSuchApp         Class = "no-such-app"
	ClassNotInstalled      Class = "not-installed"
	ClassNeeded            Class = "needed"
	ClassMissingDependency Class = "missing-dependency"
	ClassNoSecret          Class = "no-secret"
	ClassAccessDenied      Class = "access-denied"
	ClassShuttingDown      Class = "shutting-down"
	ClassTimeout           Class = "timeout"
	ClassCancelled         Class = "cancelled"
	ClassUnavailable       Class = "podman-unavailable"
	ClassDependencyFailed  Class = "dependency-failed"
	ClassHost              Class = "host"
	ClassRolledBack        Class = "rolled-back"
	ClassWaiting           Class = "waiting"
	ClassBackoff           Class = "backoff"
	ClassUnreachable       Class = "unreachable"
	// ClassFailed is every other failure (podman or systemd refused, a file could not be written):
	// the message says what.
	ClassFailed Class = "failed"
)

// DBusErrorPrefix is the prefix of the D-Bus API's error names.
const DBusErrorPrefix = "org.lockstep.Reconciler1.Error."

// Info is one row of the table: a class, the sentinel error that has it (nil: only context's), the
// value of the class label of lockstep_failures_total, the word lockstepctl prints before a failure
// of the class, and the D-Bus error name a refused request of the class is answered with.
type Info struct {
	Class  Class
	Err    error
	Metric string
	Word   string
	DBus   string
}

// table is the one mapping. Order matters to Of: the first row whose error matches wins, so the
// deadlines (whose errors may also wrap ErrUnavailable) come before podman-unavailable.
var table = []Info{
	{ClassTimeout, ErrTimeout, "timeout", "timed out", DBusErrorPrefix + "Failed"},
	{ClassCancelled, ErrCancelled, "cancelled", "cancelled", DBusErrorPrefix + "Failed"},
	{ClassShuttingDown, ErrShuttingDown, "shutting_down", "shutting down", DBusErrorPrefix + "ShuttingDown"},
	{ClassAccessDenied, ErrAccessDenied, "access_denied", "access denied", DBusErrorPrefix + "AccessDenied"},
	{ClassInvalidManifest, ErrInvalidManifest, "invalid_manifest", "invalid manifest", DBusErrorPrefix + "InvalidManifest"},
	{ClassNoSuchApp, ErrNoSuchApp, "no_such_app", "no such app", DBusErrorPrefix + "NoSuchApp"},
	{ClassNotInstalled, ErrNotInstalled, "not_installed", "not installed", DBusErrorPrefix + "NoSuchApp"},
	{ClassNeeded, ErrNeeded, "needed", "needed", DBusErrorPrefix + "Needed"},
	{ClassMissingDependency, ErrMissingDependency, "missing_dependency", "missing dependency", DBusErrorPrefix + "MissingDependency"},
	{ClassNoSecret, ErrNoSecret, "no_secret", "no such secret", DBusErrorPrefix + "NoSuchSecret"},
	{ClassUnavailable, ErrUnavailable, "podman_unavailable", "podman unavailable", DBusErrorPrefix + "Failed"},
	{ClassDependencyFailed, ErrDependencyFailed, "dependency_failed", "dependency failed", DBusErrorPrefix + "Failed"},
	{ClassHost, ErrHost, "host", "host problem", DBusErrorPrefix + "Failed"},
	{ClassRolledBack, ErrRolledBack, "rolled_back", "rolled back", DBusErrorPrefix + "Failed"},
	{ClassWaiting, ErrWaiting, "waiting", "waiting", DBusErrorPrefix + "Failed"},
	{ClassBackoff, ErrBackoff, "backoff", "backoff", DBusErrorPrefix + "Failed"},
	{ClassUnreachable, ErrUnreachable, "unreachable", "unreachable", DBusErrorPrefix + "Failed"},
	{ClassFailed, nil, "failed", "failed", DBusErrorPrefix + "Failed"},
}

// Table returns a copy of the mapping, one row per class.
func Table() []Info { return append([]Info(nil), table...) }

// info returns the row of c; a class this lockstep does not know (a newer lockstepd's, or "" from
// an older one) is ClassFailed's row with its own name kept.
func (c Class) info() Info {
	for _, i := range table {
		if i.Class == c {
			return i
		}
	}
	i := table[len(table)-1]
	if c != "" {
		i.Class = c
	}
	return i
}

// Metric is the class's label value in lockstep_failures_total.
func (c Class) Metric() string { return c.info().Metric }

// Word is what lockstepctl prints before a failure of the class.
func (c Class) Word() string { return c.info().Word }

// DBusError is the D-Bus error name a refused request of the class is answered with.
func (c Class) DBusError() string { return c.info().DBus }

// ByDBusError is the class a D-Bus error name stands for: Failed is failed (a timeout's class is not
// in its name), any other the first row with that name (NoSuchApp is no-such-app); "" for a name of
// no row.
func ByDBusError(name string) Class {
	if name == ClassFailed.DBusError() {
		return ClassFailed
	}
	for _, i := range table {
		if i.DBus == name {
			return i.Class
		}
	}
	return ""
}

// Err is the sentinel error of the class (nil for ClassFailed), so that a client can rebuild an
// error that errors.Is recognises from a class it received.
func (c Class) Err() error { return c.info().Err }

// Of returns the class of an error: the first row of the table whose sentinel it wraps (a context's
// deadline or cancellation count as timeout and cancelled), ClassFailed for any other error, "" for
// nil.
func Of(err error) Class {
	if err == nil {
		return ""
	}
	switch {
	case errors.Is(err, ErrTimeout), errors.Is(err, context.DeadlineExceeded):
		return ClassTimeout
	case errors.Is(err, ErrCancelled), errors.Is(err, context.Canceled):
		return ClassCancelled
	}
	for _, i := range table {
		if i.Err != nil && errors.Is(err, i.Err) {
			return i.Class
		}
	}
	return ClassFailed
}

// Subject is what a failure is about.
type Subject string

// Subjects of failures.
const (
	SubjectApp       Subject = "app"       // an app (a one-container app's container is the app)
	SubjectContainer Subject = "container" // one container of a stack; the failure's name is its name in the stack
	SubjectCompanion Subject = "companion" // a companion unit; the failure's name is the companion's id
	SubjectManifest  Subject = "manifest"  // a manifest file; the failure's name is the file
	SubjectPass      Subject = "pass"      // the whole pass (the apps dir could not be read)
)

// Subjects lists every subject, for the tests that hold the mapping complete.
func Subjects() []Subject {
	return []Subject{SubjectApp, SubjectContainer, SubjectCompanion, SubjectManifest, SubjectPass}
}

// Refusal is a refusal received from lockstepd (over D-Bus): its message, and its class, so that
// errors.Is(err, ErrNeeded) holds on the client's side of a refused remove too.
type Refusal struct {
	Message string
	Class   Class
}

func (r *Refusal) Error() string { return r.Message }

// Unwrap is the class's sentinel error.
func (r *Refusal) Unwrap() error { return r.Class.Err() }
