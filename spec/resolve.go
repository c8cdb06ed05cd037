package spec

import (
	"fmt"
	"path"
	"time"

	"github.com/lockstep/lockstep/manifest"
)

// Resolved is a container's entry in a manifest (an app's container, a stack member or a companion)
// with its strings parsed once, for every consumer alike (the desired spec, companion units, the
// exports): published ports, volumes with ${APP_DATA} expanded, read-only mounts of an app's data
// resolved to the data dir of the app that answers for their from (an app id or a capability), and
// capabilities spelled and sorted as podman and systemd take them.
type Resolved struct {
	Ports   []manifest.Port
	Volumes []manifest.Volume // the manifest's volumes, in its order
	Mounts  []manifest.Volume // its mounts of apps' data, read-only, in its order
	CapAdd  []string
	CapDrop []string
}

// Binds is every bind mount: the volumes, then the mounts.
func (r Resolved) Binds() []manifest.Volume {
	if len(r.Mounts) == 0 {
		return r.Volumes
	}
	return append(append(make([]manifest.Volume, 0, len(r.Volumes)+len(r.Mounts)), r.Volumes...), r.Mounts...)
}

// Entry is what Resolve reads of a manifest entry; manifest.Container and manifest.Companion give it
// through EntryOf and CompanionEntry.
type Entry struct {
	Field        string // its manifest path, for errors: app.container, app.containers[1], app.companions[0]
	Ports        []string
	Volumes      []string
	Mounts       []manifest.DepMount
	Capabilities manifest.Capabilities
}

// EntryOf is a member's entry.
func EntryOf(m manifest.Member) Entry {
	return Entry{Field: m.Field, Ports: m.Ports, Volumes: m.Volumes, Mounts: m.Mounts, Capabilities: m.Capabilities}
}

// CompanionEntry is a companion's entry (i: its index in app.companions).
func CompanionEntry(c manifest.Companion, i int) Entry {
	return Entry{Field: fmt.Sprintf("app.companions[%d]", i), Ports: c.Ports, Volumes: c.Volumes, Mounts: c.Mounts, Capabilities: c.Capabilities}
}

// Resolve parses e for app. providers maps a dependency's name to the installed app that answers for
// it (manifest.Set.Providers); a name it does not hold (or a nil map, for a tool that has no
// installed set) is taken as an app id. A manifest that validated never fails here; an error names
// the file, the field and the reason.
func Resolve(app *manifest.Loaded, e Entry, roots manifest.Roots, providers map[string]string) (Resolved, error) {
	var r Resolved
	for i, s := range e.Ports {
		p, err := manifest.ParsePort(s)
		if err != nil {
			return r, fmt.Errorf("%s: %s.ports[%d]: %w", app.File, e.Field, i, err)
		}
		r.Ports = append(r.Ports, p)
	}
	for i, s := range e.Volumes {
		v, err := manifest.ParseVolume(s, roots.AppData(app.ID))
		if err != nil {
			return r, fmt.Errorf("%s: %s.volumes[%d]: %w", app.File, e.Field, i, err)
		}
		r.Volumes = append(r.Volumes, v)
	}
	for _, dm := range e.Mounts {
		id := dm.From
		if p, ok := providers[dm.From]; ok {
			id = p
		}
		r.Mounts = append(r.Mounts, manifest.Volume{Source: path.Join(roots.AppData(id), dm.Path), Target: path.Clean(dm.Target), Options: []string{"ro"}})
	}
	r.CapAdd = NormCaps(e.Capabilities.Add)
	r.CapDrop = NormCaps(e.Capabilities.Drop)
	return r, nil
}

// podman's health-check defaults, for a check that leaves them out. lockstep's own health monitor,
// the rollback deadline, the create request's health config and the Kubernetes probes all use these.
const (
	DefaultHealthInterval = 30 * time.Second
	DefaultHealthTimeout  = 30 * time.Second
	DefaultHealthRetries  = 3
)

// HealthCheck is a health check with the defaults filled in.
type HealthCheck struct {
	Command     []string
	Interval    time.Duration
	Timeout     time.Duration
	StartPeriod time.Duration
	Retries     int
}

// Effective is h with podman's defaults filled in (nil: no check, the zero value).
func Effective(h *manifest.Health) HealthCheck {
	if h == nil {
		return HealthCheck{}
	}
	e := HealthCheck{Command: h.Command, Interval: h.Interval.D(), Timeout: h.Timeout.D(), StartPeriod: h.StartPeriod.D(), Retries: h.Retries}
	if e.Interval == 0 {
		e.Interval = DefaultHealthInterval
	}
	if e.Timeout == 0 {
		e.Timeout = DefaultHealthTimeout
	}
	if e.Retries == 0 {
		e.Retries = DefaultHealthRetries
	}
	return e
}

// Notes are what lockstep does differently from what a valid manifest's words may suggest, for
// lockstepctl validate to say (FILE: FIELD: what lockstep does). A restart policy other than no is
// carried out by lockstep, never by podman.
func Notes(apps ...*manifest.Loaded) []manifest.Problem {
	var out []manifest.Problem
	for _, app := range apps {
		for _, m := range app.Members() {
			if m.Restart != "" && m.Restart != "no" {
				out = append(out, manifest.Problem{File: app.File, Field: m.Field + ".restart", Reason: m.Restart +
					" is carried out by lockstep: an exited container is started again, whatever its exit code, under lockstep's restart backoff (10 s doubling to 5 min); podman's own restart policy on the container stays no"})
			}
		}
	}
	return out
}
