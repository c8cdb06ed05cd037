package quadlet

import (
	"fmt"
	"path"
	"time"

	"github.com/lockstep/lockstep/manifest"
	"github.com/lockstep/lockstep/spec"
)

// CompanionUnit resolves a companion of app into the renderer's input.
func CompanionUnit(app *manifest.Loaded, c manifest.Companion, roots manifest.Roots, wantedBy string) Unit {
	u := Unit{ID: c.ID, App: app.ID, Description: fmt.Sprintf("%s: %s (lockstep companion)", app.Name, c.ID),
		Image: c.Image, Exec: c.Command, Env: c.Env, Network: c.Network, User: c.User, WantedBy: wantedBy,
		StopTimeout: int((c.StopGracePeriod.D() + time.Second - 1) / time.Second),
		CapAdd:      spec.NormCaps(c.Capabilities.Add), CapDrop: spec.NormCaps(c.Capabilities.Drop),
		// Not io.lockstep.app: that label marks an app's own containers, which the apps stage manages.
		Labels: map[string]string{spec.LabelCompanionOf: app.ID, spec.LabelCompanion: c.ID}}
	for _, s := range c.Ports {
		if p, err := manifest.ParsePort(s); err == nil {
			u.Ports = append(u.Ports, p)
		}
	}
	for _, s := range c.Volumes {
		if v, err := manifest.ParseVolume(s, roots.AppData(app.ID)); err == nil {
			u.Volumes = append(u.Volumes, v)
		}
	}
	for _, dm := range c.Mounts {
		// from is the app itself or an app id it requires (capabilities are not resolved here).
		u.Volumes = append(u.Volumes, manifest.Volume{Source: path.Join(roots.AppData(dm.From), dm.Path), Target: path.Clean(dm.Target), Options: []string{"ro"}})
	}
	return u
}
