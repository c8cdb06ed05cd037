package quadlet

import (
	"fmt"
	"time"

	"github.com/lockstep/lockstep/manifest"
	"github.com/lockstep/lockstep/spec"
)

// CompanionUnit resolves companion i of app into the renderer's input (spec.Resolve: providers
// answer for a mount's from, nil takes it as an app id).
func CompanionUnit(app *manifest.Loaded, i int, roots manifest.Roots, providers map[string]string, wantedBy string) (Unit, error) {
	c := app.Companions[i]
	res, err := spec.Resolve(app, spec.CompanionEntry(c, i), roots, providers)
	if err != nil {
		return Unit{}, err
	}
	u := Unit{ID: c.ID, App: app.ID, Description: fmt.Sprintf("%s: %s (lockstep companion)", app.Name, c.ID),
		Image: c.Image, Exec: c.Command, Env: c.Env, Network: c.Network, User: c.User, WantedBy: wantedBy,
		StopTimeout: int((c.StopGracePeriod.D() + time.Second - 1) / time.Second),
		Ports:       res.Ports, Volumes: res.Binds(), CapAdd: res.CapAdd, CapDrop: res.CapDrop,
		// Not io.lockstep.app: that label marks an app's own containers, which the apps stage manages.
		Labels: map[string]string{spec.LabelCompanionOf: app.ID, spec.LabelCompanion: c.ID}}
	return u, nil
}
