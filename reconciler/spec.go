package reconciler

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"path/filepath"
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

// DefaultStopTimeout is how long a stop waits for a container before killing it, unless the manifest
// sets container.stop_grace_period.
const DefaultStopTimeout = 10 * time.Second

// Desired is the container an installed app should have.
type Desired struct {
	App     *manifest.Loaded
	Request CreateRequest
	// Hashes holds the spec hash under every scheme lockstep knows, so a container labelled with an
	// older scheme is compared under that scheme and an upgrade of lockstep alone recreates nothing.
	Hashes map[string]string
}

// Hash is the hash under the current scheme.
func (d *Desired) Hash() string { return d.Hashes[HashScheme] }

// DesiredFor computes the container that app should have. roots give ${APP_DATA}.
func DesiredFor(app *manifest.Loaded, roots manifest.Roots) *Desired {
	c := app.Container
	image := c.Image
	if c.Build != nil {
		image = c.Build.Tag
	}
	r := CreateRequest{
		Name:       app.ID,
		Image:      image,
		Command:    c.Command,
		Entrypoint: c.Entrypoint,
		Env:        c.Env,
		Network:    c.Network,
		User:       c.User,
		ReadOnly:   c.ReadOnly,
		Restart:    c.Restart,
		Health:     app.Health,
	}
	if r.Network == "" {
		r.Network = "bridge"
	}
	if r.Restart == "" {
		r.Restart = "no"
	}
	r.StopTimeout = DefaultStopTimeout
	if c.StopGracePeriod != 0 {
		r.StopTimeout = c.StopGracePeriod.D()
	}
	for _, s := range c.Ports {
		if p, err := manifest.ParsePort(s); err == nil {
			r.Ports = append(r.Ports, p)
		}
	}
	for _, s := range c.Volumes {
		if v, err := manifest.ParseVolume(s, roots.AppData(app.ID)); err == nil {
			r.Volumes = append(r.Volumes, v)
		}
	}
	r.CapAdd = normCaps(c.Capabilities.Add)
	r.CapDrop = normCaps(c.Capabilities.Drop)
	d := &Desired{App: app, Request: r, Hashes: map[string]string{"v1": hashV1(&r)}}
	r.Labels = map[string]string{
		LabelApp:        app.ID,
		LabelSpecHash:   d.Hashes[HashScheme],
		LabelHashScheme: HashScheme,
	}
	d.Request = r
	return d
}

func normCaps(in []string) []string {
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

// hashV1 is spec-hash scheme v1. Its input is frozen: never rename, reorder or re-encode these fields.
// A new manifest field joins with omitempty, so that every container created before it existed keeps
// its hash while the field is unset; a change that cannot be made that way needs scheme v2.
func hashV1(r *CreateRequest) string {
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
		CapAdd      []string      `json:"cap_add,omitempty"`
		CapDrop     []string      `json:"cap_drop,omitempty"`
		User        string        `json:"user,omitempty"`
		ReadOnly    bool          `json:"read_only,omitempty"`
		Restart     string        `json:"restart"`
		StopTimeout time.Duration `json:"stop_timeout,omitempty"`
		Health      *health       `json:"health,omitempty"`
	}{
		Image: r.Image, Command: r.Command, Entrypoint: r.Entrypoint, Network: r.Network,
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
