package manifest

import (
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
	ID          string      `yaml:"id"`
	Name        string      `yaml:"name"`
	Version     string      `yaml:"version"`
	Description string      `yaml:"description"`
	Container   Container   `yaml:"container"`
	Health      *Health     `yaml:"health"`
	Requires    Requires    `yaml:"requires"`
	Hooks       Hooks       `yaml:"hooks"`
	Companions  []Companion `yaml:"companions"`
	Registry    Registry    `yaml:"registry"`
}

// Container is the app's main container.
type Container struct {
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
	// Probes names HTTP paths that lockstep's reachability check GETs on published ports.
	Probes []Probe `yaml:"probes"`
}

// Probe makes the reachability check of one published TCP port an HTTP GET of Path instead of a TCP
// connect. Port is the container port of a published mapping in ports.
type Probe struct {
	Port int    `yaml:"port"`
	Path string `yaml:"path"`
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
	Apps   []string `yaml:"apps"`
	DiskGB float64  `yaml:"disk_gb"`
}

// Hooks are actions lockstep performs around an app's lifecycle.
type Hooks struct {
	PreStart []TemplateHook `yaml:"pre_start"`
}

// TemplateHook renders Template (relative to the manifest's directory) to Path (relative to the app's
// data dir) before the app starts.
type TemplateHook struct {
	Template string `yaml:"template"`
	Path     string `yaml:"path"`
	Mode     string `yaml:"mode"`
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
}

// Registry holds per-app registry settings.
type Registry struct {
	// Insecure lists registries (host[:port]) that may be used without TLS verification.
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
