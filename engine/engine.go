package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/lockstep/lockstep/manifest"
	"github.com/lockstep/lockstep/outcome"
	"github.com/lockstep/lockstep/spec"
)

// Podman is what a pass needs from the container engine. The real implementation talks to the podman
// service through its bindings (package podman); tests of error paths use a fake.
type Podman interface {
	// List returns every container, running or not, in one request.
	List(ctx context.Context) ([]Container, error)
	// Inspect returns details of one container; ErrNotFound when it does not exist.
	Inspect(ctx context.Context, nameOrID string) (*Inspected, error)
	ImageExists(ctx context.Context, ref string) (bool, error)
	// Pull pulls ref, writing the service's progress lines to progress (nil: discarded).
	Pull(ctx context.Context, ref string, tlsVerify bool, progress io.Writer) error
	Build(ctx context.Context, b BuildRequest) error
	// RemoveImage removes the image (or only the tag, when it has others) ref; never a container.
	// ErrConflict when a container uses it, ErrNotFound when it is not there.
	RemoveImage(ctx context.Context, ref string) error
	Create(ctx context.Context, c spec.CreateRequest) (id string, err error)
	Start(ctx context.Context, id string) error
	// Stop stops a container, killing it after timeout; 0 means the container's own stop timeout
	// (set from stop_grace_period when lockstep created it).
	Stop(ctx context.Context, id string, timeout time.Duration) error
	// Remove removes a stopped or running container; it never removes volumes.
	Remove(ctx context.Context, id string) error
	// EnsureNetwork creates the named network (with DNS, labelled for app) unless it exists.
	EnsureNetwork(ctx context.Context, name, app string) error
}

// Systemd is what the companion stage needs from systemd; *systemd.Client is one.
type Systemd interface {
	Reload(ctx context.Context) error
	Start(ctx context.Context, unit string) error
	Restart(ctx context.Context, unit string) error
	Stop(ctx context.Context, unit string) error
	ResetFailed(ctx context.Context, unit string) error
	State(ctx context.Context, unit string) (UnitState, error)
}

// UnitState is what lockstep reads about a systemd unit.
type UnitState struct {
	LoadState   string // loaded, not-found, bad-setting, error, masked
	ActiveState string // active, reloading, inactive, failed, activating, deactivating
	SubState    string
	Result      string // success, exit-code, signal, ...
	NRestarts   uint32
}

// Container is one container as List reports it.
type Container struct {
	ID     string
	Name   string
	Image  string
	State  string // created, running, paused, exited, stopped, unknown, ...
	Labels map[string]string
}

// Inspected holds what adoption needs to know about a container lockstep did not create.
type Inspected struct {
	ID      string
	Name    string
	Image   string // the image name the container was created from
	Command []string
	Ports   []manifest.Port
	Binds   []string // SOURCE:TARGET
	Labels  map[string]string
}

// BuildRequest asks for a local image build.
type BuildRequest struct {
	ContextDir    string
	Containerfile string // absolute
	Tag           string
	// Output receives the build's output (nil: discarded).
	Output io.Writer
}

// HostInfo is what lockstep needs from podman's GET /info to know what the host's podman can do
// (package hostcheck).
type HostInfo struct {
	Version string
	Backend string // host.networkBackend: netavark, cni
	// BackendInfo: host.networkBackendInfo is present (podman >= 4.4); then DNSPath is its dns.path,
	// "" when podman found no DNS helper.
	BackendInfo bool
	DNSPath     string
	Rootless    bool  // host.security.rootless
	UIDs        int64 // the sizes of host.idMappings.uidmap, summed
}

// Classified podman failures. Errors from a Podman implementation wrap one of these where they apply, so
// that callers use errors.Is rather than matching messages.
var (
	ErrNotFound      = errors.New("not found")
	ErrConflict      = errors.New("conflict")
	ErrUnavailable   = outcome.ErrUnavailable // "podman service unavailable"
	ErrImageNotFound = errors.New("image not found")
	// ErrNameInUse is a create refused because a container (or a storage-only container, one podman
	// did not finish creating) already holds the name. It is also an ErrConflict.
	ErrNameInUse = fmt.Errorf("%w: name already in use", ErrConflict)
)

// APIError is a failed podman API call, classified by its HTTP status.
type APIError struct {
	Op      string // e.g. "creating container bitcoin"
	Status  int    // HTTP status, 0 when the service could not be reached
	Message string
	Err     error // one of the classified errors above, or the transport error
}

func (e *APIError) Error() string {
	if e.Status == 0 {
		return fmt.Sprintf("%s: %v", e.Op, e.Err)
	}
	return fmt.Sprintf("%s: podman answered %d: %s", e.Op, e.Status, e.Message)
}

func (e *APIError) Unwrap() error { return e.Err }
