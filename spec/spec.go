package spec

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/lockstep/lockstep/manifest"
)

// Labels lockstep puts on every container it creates.
const (
	LabelApp        = "io.lockstep.app"
	LabelSpecHash   = "io.lockstep.spec-hash"
	LabelHashScheme = "io.lockstep.hash-scheme"
	// HashScheme is the scheme new containers are labelled with.
	HashScheme = "v1"
)

// Labels on companion containers.
const (
	LabelCompanion   = "io.lockstep.companion"
	LabelCompanionOf = "io.lockstep.companion-of"
)

// DefaultStopTimeout is how long a stop waits for a container before killing it, unless the manifest
// sets container.stop_grace_period.
const DefaultStopTimeout = 10 * time.Second

// LabelContainer names a stack container inside its app (absent for a one-container app).
const LabelContainer = "io.lockstep.container"

// NetworkPrefix starts the name of the network lockstep manages for each app: lockstep-APP.
const NetworkPrefix = "lockstep-"

// AppNetwork is the name of the network lockstep manages for app id.
func AppNetwork(id string) string { return NetworkPrefix + id }

// ExportsSuffix ends the name of an app's exports network (PREFIX+APP+ExportsSuffix); app ids cannot
// contain "_", so it never clashes with another app's network.
const ExportsSuffix = "_exports"

func (w *Wiring) exportsNetwork(id string) string { return w.network(id) + ExportsSuffix }

// network names app id's network under the wiring's prefix.
func (w *Wiring) network(id string) string {
	if w.NetworkPrefix != "" {
		return w.NetworkPrefix + id
	}
	return AppNetwork(id)
}

// CreateRequest is a container to create, in lockstep's terms.
type CreateRequest struct {
	Name       string
	Image      string
	Command    []string
	Entrypoint []string
	Env        map[string]string
	Labels     map[string]string
	Ports      []manifest.Port
	Volumes    []manifest.Volume
	Network    string // bridge, host, none or a network name
	// Aliases are the container's extra names on Network (a stack member's name).
	Aliases []string
	// Networks are further networks the container joins (its dependencies' app networks).
	Networks    []string
	CapAdd      []string
	CapDrop     []string
	User        string
	ReadOnly    bool
	Restart     string
	Health      *manifest.Health
	StopTimeout time.Duration
}

// Desired is one container an installed app should have.
type Desired struct {
	App *manifest.Loaded
	// Member is the container's name inside a stack ("" for a one-container app); Index its place in
	// the app's start order.
	Member string
	Index  int
	// Deps are the installed apps this app depends on (required, and optional ones installed), with
	// capabilities resolved to their providers.
	Deps []string
	// Health is the container's health check, if any.
	Health  *manifest.Health
	Build   *manifest.Build
	Request CreateRequest
	// Hashes holds the spec hash under every scheme lockstep knows, so a container labelled with an
	// older scheme is compared under that scheme and an upgrade of lockstep alone recreates nothing.
	Hashes map[string]string
	// Mounts are its read-only mounts of dependencies' data (also in Request.Volumes): a change of the
	// files there restarts it (reconciler/mounts.go).
	Mounts []manifest.Volume
	// Err is a value the spec needs but could not have (a secret that cannot be read, an entry that
	// does not resolve): the container is then left as it is and the app reported, rather than given
	// an empty value.
	Err error
}

// Hash is the hash under the current scheme.
func (d *Desired) Hash() string { return d.Hashes[HashScheme] }

// Name is the container's podman name.
func (d *Desired) Name() string { return d.Request.Name }

// Wiring gives what a container's spec takes from other apps: where their data lives, which app
// answers for a dependency, and exported values.
type Wiring struct {
	Roots manifest.Roots
	// Set is the installed set (nil: no dependencies resolve).
	Set *manifest.Set
	// Value returns an app's exported value ("" and an error when it cannot be had).
	Value func(app *manifest.Loaded, name string) (string, error)
	// NetworkPrefix starts app network names (default NetworkPrefix).
	NetworkPrefix string
	// DefaultNetwork, when set, is the network of containers that name none, instead of their app's
	// own network (and its exports network, and their dependencies').
	DefaultNetwork string
}

// DesiredFor computes the one container of a one-container app (tests and tools). roots give ${APP_DATA}.
func DesiredFor(app *manifest.Loaded, roots manifest.Roots) *Desired {
	return DesiredsFor(app, &Wiring{Roots: roots})[0]
}

// DesiredsFor computes the containers app should have, in start order. An unresolvable value (an
// optional dependency not installed) is empty.
func DesiredsFor(app *manifest.Loaded, w *Wiring) []*Desired {
	var deps []string
	if w.Set != nil {
		deps = w.Set.Resolve(&app.App)
	}
	var werr error
	value := func(name, key string) string {
		target := app
		if name != app.ID {
			if w.Set == nil {
				return ""
			}
			id, ok := w.Set.Providers[name]
			if !ok {
				return ""
			}
			target = w.Set.ByID(id)
		}
		if target == nil || w.Value == nil {
			return ""
		}
		v, err := w.Value(target, key)
		if err != nil {
			if werr == nil {
				werr = fmt.Errorf("${%s.%s}: %w", name, key, err)
			}
			return ""
		}
		return v
	}
	members := app.Members()
	out := make([]*Desired, 0, len(members))
	for i, m := range members {
		werr = nil
		d := desiredMember(app, m, w, deps, value)
		d.Index = i
		if d.Err == nil {
			d.Err = werr
		}
		out = append(out, d)
	}
	return out
}

func desiredMember(app *manifest.Loaded, m manifest.Member, w *Wiring, deps []string, value func(app, key string) string) *Desired {
	c := m.Container
	image := c.Image
	if c.Build != nil {
		image = c.Build.Tag
	}
	r := CreateRequest{
		Name:       m.PodmanName,
		Image:      image,
		Entrypoint: c.Entrypoint,
		Network:    c.Network,
		User:       c.User,
		ReadOnly:   c.ReadOnly,
		// podman's own restart policy is always no: a manifest's restart (on-failure, unless-stopped,
		// always) is carried out by lockstep, which starts an exited container under its backoff.
		// podman's policy would restart it behind lockstep's back, without backoff (issue 16 point 4).
		Restart: "no",
		Health:  m.Health,
	}
	for _, word := range c.Command {
		r.Command = append(r.Command, manifest.Expand(word, value))
	}
	if len(c.Env) > 0 {
		r.Env = make(map[string]string, len(c.Env))
		for k, v := range c.Env {
			r.Env[k] = manifest.Expand(v, value)
		}
	}
	if r.Network == "" && w.DefaultNetwork != "" {
		r.Network = w.DefaultNetwork // no app networks (rootless podman 4.3: see docs/compatibility.md)
	}
	if r.Network == "" {
		// The app's own network, private to it: its containers know each other by name (a stack's
		// by member name). A container that an export names as a host also joins the app's exports
		// network, known there by its podman name only; dependents join their dependencies' exports
		// networks. So a dependent reaches exactly the exported containers of its dependencies, and
		// its own "db" is never confused with a dependency's.
		r.Network = w.network(app.ID)
		if m.Name != "" {
			r.Aliases = []string{m.Name}
		}
		if exportedHost(&app.App, m) {
			r.Networks = append(r.Networks, w.exportsNetwork(app.ID))
		}
		for _, dep := range deps {
			if da := w.Set.ByID(dep); da != nil && hasHostExport(da) && Uses(app, m, dep, w.Set.Providers) {
				r.Networks = append(r.Networks, w.exportsNetwork(dep))
			}
		}
	}
	r.StopTimeout = DefaultStopTimeout
	if c.StopGracePeriod != 0 {
		r.StopTimeout = c.StopGracePeriod.D()
	}
	var providers map[string]string
	if w.Set != nil {
		providers = w.Set.Providers
	}
	res, err := Resolve(app, EntryOf(m), w.Roots, providers)
	r.Ports, r.Volumes, r.CapAdd, r.CapDrop = res.Ports, res.Binds(), res.CapAdd, res.CapDrop
	d := &Desired{App: app, Member: m.Name, Deps: deps, Health: m.Health, Build: c.Build, Hashes: map[string]string{"v1": HashV1(&r)}, Err: err, Mounts: res.Mounts}
	r.Labels = map[string]string{
		LabelApp:        app.ID,
		LabelSpecHash:   d.Hashes[HashScheme],
		LabelHashScheme: HashScheme,
	}
	if m.Name != "" {
		r.Labels[LabelContainer] = m.Name
	}
	d.Request = r
	return d
}

// exportedHost tells whether an export of app names m as a host and m is on the app's network.
func exportedHost(app *manifest.App, m manifest.Member) bool {
	if m.Network != "" {
		return false
	}
	for _, e := range app.Exports {
		if e.Host != "" && (e.Host == m.Name || (m.Name == "" && e.Host == app.ID)) {
			return true
		}
	}
	return false
}

// Uses tells whether member m of app takes values of the installed app dep: a ${NAME.KEY} in its env
// or command, or a dep "NAME" in a pre-start template that restarts it, NAME being an app id or
// capability that dep answers for (providers: manifest.Set.Providers). Only such a member joins dep's
// exports network: the others (a stack's db, its web) stay on their own app's network, and neither
// dep nor any other app sees them (issue 16 points 2 and 3).
func Uses(app *manifest.Loaded, m manifest.Member, dep string, providers map[string]string) bool {
	names := func(s string) bool {
		for _, r := range manifest.Refs(s) {
			if r[0] != app.ID && providers[r[0]] == dep {
				return true
			}
		}
		return false
	}
	for _, v := range m.Env {
		if names(v) {
			return true
		}
	}
	for _, word := range m.Command {
		if names(word) {
			return true
		}
	}
	for i, h := range app.Hooks.PreStart {
		if i >= len(app.HookDeps) || (len(h.Containers) > 0 && !slices.Contains(h.Containers, m.Name) && !(m.Name == "" && slices.Contains(h.Containers, app.ID))) {
			continue
		}
		for _, name := range app.HookDeps[i] {
			if name == "*" || (name != app.ID && providers[name] == dep) {
				return true
			}
		}
	}
	return false
}

// hasHostExport tells whether any container of app is an exported host on its exports network.
func hasHostExport(app *manifest.Loaded) bool {
	for _, m := range app.Members() {
		if exportedHost(&app.App, m) {
			return true
		}
	}
	return false
}

// NormCaps spells capabilities as podman and systemd take them: upper case, with the CAP_ prefix
// (ALL as it is), sorted.
func NormCaps(in []string) []string {
	var out []string
	for _, c := range in {
		c = strings.ToUpper(c)
		if c != "ALL" && !strings.HasPrefix(c, "CAP_") {
			c = "CAP_" + c
		}
		out = append(out, c)
	}
	sort.Strings(out)
	return out
}

// HashV1 is spec-hash scheme v1. Its input is frozen: never rename, reorder or re-encode these fields.
// A new manifest field joins with omitempty, so that every container created before it existed keeps
// its hash while the field is unset; a change that cannot be made that way needs scheme v2.
func HashV1(r *CreateRequest) string {
	type health struct {
		Command     []string      `json:"command,omitempty"`
		Interval    time.Duration `json:"interval,omitempty"`
		Timeout     time.Duration `json:"timeout,omitempty"`
		Retries     int           `json:"retries,omitempty"`
		StartPeriod time.Duration `json:"start_period,omitempty"`
	}
	in := struct {
		Image       string        `json:"image"`
		Command     []string      `json:"command,omitempty"`
		Entrypoint  []string      `json:"entrypoint,omitempty"`
		Env         []string      `json:"env,omitempty"`
		Ports       []string      `json:"ports,omitempty"`
		Volumes     []string      `json:"volumes,omitempty"`
		Network     string        `json:"network"`
		Aliases     []string      `json:"aliases,omitempty"`
		Networks    []string      `json:"networks,omitempty"`
		CapAdd      []string      `json:"cap_add,omitempty"`
		CapDrop     []string      `json:"cap_drop,omitempty"`
		User        string        `json:"user,omitempty"`
		ReadOnly    bool          `json:"read_only,omitempty"`
		Restart     string        `json:"restart"`
		StopTimeout time.Duration `json:"stop_timeout,omitempty"`
		Health      *health       `json:"health,omitempty"`
	}{
		Image: r.Image, Command: r.Command, Entrypoint: r.Entrypoint, Network: r.Network, Aliases: r.Aliases, Networks: r.Networks,
		CapAdd: r.CapAdd, CapDrop: r.CapDrop, User: r.User, ReadOnly: r.ReadOnly, Restart: r.Restart,
	}
	if r.StopTimeout != DefaultStopTimeout {
		in.StopTimeout = r.StopTimeout
	}
	for k, v := range r.Env {
		in.Env = append(in.Env, k+"="+v)
	}
	sort.Strings(in.Env)
	for _, p := range r.Ports {
		in.Ports = append(in.Ports, p.String())
	}
	sort.Strings(in.Ports)
	for _, v := range r.Volumes {
		s := filepath.Clean(v.Source) + ":" + filepath.Clean(v.Target)
		if len(v.Options) > 0 {
			s += ":" + strings.Join(v.Options, ",")
		}
		in.Volumes = append(in.Volumes, s)
	}
	sort.Strings(in.Volumes)
	if h := r.Health; h != nil {
		in.Health = &health{h.Command, h.Interval.D(), h.Timeout.D(), h.Retries, h.StartPeriod.D()}
	}
	b, err := json.Marshal(in)
	if err != nil {
		panic(err) // cannot happen: plain data
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:16])
}
