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
)
