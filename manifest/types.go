package manifest

import (
	"cmp"
	"fmt"
	"time"

	"go.yaml.in/yaml/v3"
)

// File is the root of a manifest file: everything lives under "app".
type File struct {
	App App `yaml:"app"`
}

// App is one app as its manifest declares it.
type App struct {
	ID          string `yaml:"id"`
	Name        string `yaml:"name"`
	Version     string `yaml:"version"`
	Description string `yaml:"description"`
	// Container is the app's one container; an app made of several declares Containers instead.
	Container Container `yaml:"container"`
	// Containers is a stack: several named containers, created and started in this order (a database
	// before its API). Each has every field of Container.
	Containers []Container `yaml:"containers"`
	// Health is the single container's health check (a stack's containers each declare their own).
	Health   *Health  `yaml:"health"`
	Requires Requires `yaml:"requires"`
	// Provides names capabilities this app stands in for (bitcoin-knots provides bitcoin): consumers
	// may require the capability instead of the app.
	Provides []string `yaml:"provides"`
	// Exports are named values the app's dependents use as ${APP.NAME} in env and command, and through
	// dep in pre-start templates.
	Exports map[string]Export `yaml:"exports"`
	// SharedPaths are the paths in the app's data dir its dependents may mount read-only (mounts:
	// [{from: ID, path: ...}]): a provider's data is shared only where it says so.
	SharedPaths []string    `yaml:"shared_paths"`
	Hooks       Hooks       `yaml:"hooks"`
	Companions  []Companion `yaml:"companions"`
	Registry    Registry    `yaml:"registry"`
}

// Export is one value an app exports: exactly one of Value, Host or Secret.
type Export struct {
	// Value is a fixed value (a port number, a user name).
	Value string `yaml:"value"`
	// Host names one of the app's containers ("" or the app id for a one-container app): the value is
	// its stable hostname on the app's network.
	Host string `yaml:"host"`
	// Secret: lockstep generates the value once (32 random bytes, hex) and keeps it in its state dir,
	// mode 0600. It never appears in a log, report or D-Bus reply.
	Secret bool `yaml:"secret"`
	// Shared lets the app's dependents read a secret export (${APP.NAME}, dep in templates); without
	// it the secret is the app's own. Value and host exports are always its dependents'.
	Shared bool `yaml:"shared"`
}

// Container is one container of an app.
type Container struct {
	// Name names a stack's container inside its app (db, api, web); podman names it APP-NAME and the
	// app's network knows it as NAME. Empty for a one-container app, which podman names APP.
	Name            string            `yaml:"name"`
	Image           string            `yaml:"image"`
	Build           *Build            `yaml:"build"`
	Command         []string          `yaml:"command"`
	Entrypoint      []string          `yaml:"entrypoint"`
	Env             map[string]string `yaml:"env"`
	Ports           []string          `yaml:"ports"`
	Volumes         []string          `yaml:"volumes"`
	Network         string            `yaml:"network"`
	Capabilities    Capabilities      `yaml:"capabilities"`
	User            string            `yaml:"user"`
	ReadOnly        bool              `yaml:"read_only"`
	Restart         string            `yaml:"restart"`
	StopGracePeriod Duration          `yaml:"stop_grace_period"`
	// Health is a stack container's health check (a one-container app uses app.health).
	Health *Health `yaml:"health"`
	// Mounts are paths inside a dependency's data dir, always mounted read-only.
	Mounts []DepMount `yaml:"mounts"`
	// Probes names HTTP paths that lockstep's reachability check GETs on published ports.
	Probes []Probe `yaml:"probes"`
}

// Probe makes the reachability check of one published TCP port an HTTP GET of Path instead of a TCP
// connect. Port is the container port of a published mapping in ports.
type Probe struct {
	Port int    `yaml:"port"`
	Path string `yaml:"path"`
}

// DepMount mounts Path, inside the data dir of the dependency From (an app id or capability the app
// requires), at Target, read-only.
type DepMount struct {
	From   string `yaml:"from"`
	Path   string `yaml:"path"`
	Target string `yaml:"target"`
}

// Build describes a local image build; its tag is the image the container runs.
type Build struct {
	Context       string `yaml:"context"`
	Containerfile string `yaml:"containerfile"`
	Tag           string `yaml:"tag"`
}

// Capabilities lists Linux capabilities to add to or drop from the default set.
type Capabilities struct {
	Add  []string `yaml:"add"`
	Drop []string `yaml:"drop"`
}

// Health is a health check run inside the container.
type Health struct {
	Command     []string `yaml:"command"`
	Interval    Duration `yaml:"interval"`
	Timeout     Duration `yaml:"timeout"`
	Retries     int      `yaml:"retries"`
	StartPeriod Duration `yaml:"start_period"`
}

// Requires states what an app needs before it can be installed.
type Requires struct {
	// Apps are dependencies (app ids or capabilities) that must be installed; they start first.
	Apps []string `yaml:"apps"`
	// Optional dependencies are used when installed: their values are empty until then.
	Optional []string `yaml:"optional"`
	DiskGB   float64  `yaml:"disk_gb"`
}

// Hooks are actions lockstep performs around an app's lifecycle.
type Hooks struct {
	// PreStart hooks run before every start lockstep performs and on every pass; a file they change
	// restarts the containers that use it.
	PreStart []TemplateHook `yaml:"pre_start"`
}

// TemplateHook renders Template (relative to the manifest's directory) to Path (relative to the app's
// data dir) with text/template; without Template it is an ownership fix: Path (a file or directory
// inside the data dir, recursively) is given Owner.
type TemplateHook struct {
	// Name names the hook in reports and errors (default: its path).
	Name     string `yaml:"name"`
	Template string `yaml:"template"`
	Path     string `yaml:"path"`
	Mode     string `yaml:"mode"`
	// Owner is UID:GID (numbers) for the rendered file, or for Path in an ownership fix.
	Owner string `yaml:"owner"`
	// Containers a changed file restarts (names in a stack); default all of the app's.
	Containers []string `yaml:"containers"`
}

// HookName is the name a hook is reported by.
func (h TemplateHook) HookName() string { return cmp.Or(h.Name, h.Path) }

// Member is one container of an app with the names lockstep gives it.
type Member struct {
	*Container
	// PodmanName is the container's name in podman: the app id, or APP-NAME in a stack.
	PodmanName string
	// Health is the check that applies to it (app.health for a one-container app).
	Health *Health
	// Field is the manifest path of the container ("app.container" or "app.containers[i]").
	Field string
}

// Members returns the app's containers in start order.
func (a *App) Members() []Member {
	if len(a.Containers) == 0 {
		h := a.Health
		if h == nil {
			h = a.Container.Health
		}
		return []Member{{Container: &a.Container, PodmanName: a.ID, Health: h, Field: "app.container"}}
	}
	out := make([]Member, len(a.Containers))
	for i := range a.Containers {
		c := &a.Containers[i]
		out[i] = Member{Container: c, PodmanName: a.ID + "-" + c.Name, Health: c.Health, Field: fmt.Sprintf("app.containers[%d]", i)}
	}
	return out
}

// Deps returns the ids or capabilities the app names as dependencies, required first.
func (a *App) Deps() []string {
	return append(append([]string(nil), a.Requires.Apps...), a.Requires.Optional...)
}

// Companion is a UI container that systemd supervises through a Quadlet unit.
type Companion struct {
	ID           string            `yaml:"id"`
	Image        string            `yaml:"image"`
	Command      []string          `yaml:"command"`
	Env          map[string]string `yaml:"env"`
	Ports        []string          `yaml:"ports"`
	Volumes      []string          `yaml:"volumes"`
	Network      string            `yaml:"network"`
	Capabilities Capabilities      `yaml:"capabilities"`
	User         string            `yaml:"user"`
	// StopGracePeriod is how long a stop waits before killing the companion (default 10s).
	StopGracePeriod Duration `yaml:"stop_grace_period"`
	// Mounts: paths in its app's (from: its id) or a required app's data dir, mounted read-only.
	Mounts []DepMount `yaml:"mounts"`
	// Probes make its readiness a GET through it (as Container.Probes), not only a running unit.
	Probes []Probe `yaml:"probes"`
}

// Registry holds per-app registry settings: Insecure lists registries (host[:port]) that may be used
// without TLS verification.
type Registry struct {
	Insecure []string `yaml:"insecure"`
}

// Duration is a time.Duration written as a Go duration string ("30s", "2m").
type Duration time.Duration

// UnmarshalYAML parses a duration string.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("want a duration such as 30s or 2m")
	}
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("invalid duration %q (want e.g. 30s, 2m)", n.Value)
	}
	if v < 0 {
		return fmt.Errorf("negative duration %q", n.Value)
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML writes the duration as a string.
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }
