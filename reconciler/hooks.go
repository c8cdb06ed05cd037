package reconciler

import (
	"fmt"
	"slices"

	"github.com/sirupsen/logrus"

	"github.com/lockstep/lockstep/manifest"
	"github.com/lockstep/lockstep/reconciler/hooks"
)

// Pre-start hooks (package hooks) run on every pass, before anything of the pass starts a container,
// so every start lockstep performs (install, start, restart, recreate) finds fresh files. A template renders to a
// file in the app's data dir, written only when its content changes; a change restarts the running
// containers that use it (once: a container started or recreated in this pass reads the new file
// anyway). An ownership hook gives a path inside the data dir its declared owner. A failing hook
// stops every start of its app in the pass, so an app never starts on a stale config.

// runHooks runs every installed app's pre-start hooks and folds the outcome into the actions.
func (r *Reconciler) runHooks(log logrus.FieldLogger, set *manifest.Set, actions []Action) {
	byApp := map[string][]*Action{}
	for i := range actions {
		a := &actions[i]
		if a.Desired != nil && a.Kind != KindRemove {
			byApp[a.App] = append(byApp[a.App], a)
		}
	}
	for _, app := range set.Apps {
		acts := byApp[app.ID]
		if len(app.Hooks.PreStart) == 0 || len(acts) == 0 {
			continue
		}
		for _, h := range app.Hooks.PreStart {
			changed, err := hooks.Run(set, app, h, r.cfg.Roots, r.exportValue)
			if err != nil {
				err = fmt.Errorf("pre-start hook %s: %w", h.HookName(), err)
				log.WithField("app", app.ID).Warn(err.Error())
				for _, a := range acts {
					if a.Blocked == nil {
						a.Blocked = err
					}
				}
				break
			}
			if !changed {
				continue
			}
			log.WithFields(logrus.Fields{"app": app.ID, "hook": h.HookName()}).Info("pre-start hook changed " + h.Path)
			for _, a := range acts {
				if len(h.Containers) > 0 && !slices.Contains(h.Containers, a.Desired.Member) && !slices.Contains(h.Containers, a.Name()) {
					continue
				}
				if a.Kind == KindNone && a.Container != nil && a.Container.State == "running" {
					a.Kind, a.Cause, a.ConfigChanged = KindRestart, fmt.Sprintf("pre-start hook %s changed %s", h.HookName(), h.Path), true
				}
			}
		}
	}
}
