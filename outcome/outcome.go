package outcome

import "errors"

// Refusals of Enable, Disable, Purge and RotateSecret.
var (
	ErrNoSuchApp       = errors.New("no such app")
	ErrInvalidManifest = errors.New("invalid manifest")
	ErrNotInstalled    = errors.New("app is not installed")
	// ErrNeeded: the app provides what other installed apps require.
	ErrNeeded = errors.New("app is needed by other installed apps")
	// ErrMissingDependency: the app requires what no installed app provides.
	ErrMissingDependency = errors.New("missing dependency")
	// ErrNoSecret: an app or name that declares no secret.
	ErrNoSecret = errors.New("no such secret")
	// ErrAccessDenied: the caller may not change what lockstepd runs.
	ErrAccessDenied = errors.New("access denied")
	// ErrShuttingDown: lockstepd is stopping; the request was not carried out.
	ErrShuttingDown = errors.New("lockstepd is shutting down")
)

// Failures of a pass that have a class of their own.
var (
	// ErrUnavailable: podman's service cannot be reached (engine.ErrUnavailable is this error).
	ErrUnavailable = errors.New("podman service unavailable")
	// ErrDependencyFailed: a container not started because a dependency (or an earlier container of
	// its stack) failed in the same pass.
	ErrDependencyFailed = errors.New("not started")
	// ErrHost: the host's podman cannot do what the app needs (package hostcheck).
	ErrHost = errors.New("host")
	// ErrRolledBack: the manifest's spec failed and its last known-good spec runs instead.
	ErrRolledBack = errors.New("rolled back")
	// ErrWaiting: a container waits for a dependency to be healthy, a companion for a mount source
	// to exist.
	ErrWaiting = errors.New("waiting")
	// ErrBackoff: a restart held back by backoff.
	ErrBackoff = errors.New("backoff")
	// ErrUnreachable: a running container whose published port does not answer.
	ErrUnreachable = errors.New("unreachable")
)
