package reconciler

import (
	"fmt"
	"slices"
	"strings"

	"github.com/lockstep/lockstep/manifest"
	"github.com/lockstep/lockstep/outcome"
	"github.com/lockstep/lockstep/reconciler/secrets"
)

// secretStore is the reconciler's handle on the secrets kept in the state dir (package secrets).
type secretStore struct{ *secrets.Store }

func newSecretStore(stateDir string) *secretStore { return &secretStore{secrets.New(stateDir)} }

func (s *secretStore) path(app, name string) string          { return s.Path(app, name) }
func (s *secretStore) get(app, name string) (string, error)  { return s.Get(app, name) }
func (s *secretStore) peek(app, name string) (string, error) { return s.Peek(app, name) }
func (s *secretStore) rotate(app, name string) error         { return s.Rotate(app, name) }
func (s *secretStore) forget(app string)                     { s.Forget(app) }

// ErrNoSecret is returned by OpRotateSecret for an app or name that declares no secret.
var ErrNoSecret = outcome.ErrNoSecret

// exportValue is the value of an app's export: fixed, a container's hostname, or a secret (read,
// never made here: package secrets' Observe).
func (r *Reconciler) exportValue(app *manifest.Loaded, name string) (string, error) {
	e, ok := app.Exports[name]
	if !ok {
		return "", fmt.Errorf("app %s exports no %s", app.ID, name)
	}
	switch {
	case e.Secret:
		return r.secrets.Observe(app.ID, name)
	case e.Host != "":
		for _, m := range app.Members() {
			if m.Name == e.Host || (m.Name == "" && e.Host == app.ID) {
				return m.PodmanName, nil
			}
		}
		return "", fmt.Errorf("app %s: export %s names no container", app.ID, name)
	}
	return e.Value, nil
}

// rotateSecret (OpRotateSecret) gives an app's secret a new value. The pass it asks for re-renders what uses the secret
// and restarts every consumer once, providers first; the value itself is never returned.
func (r *Reconciler) rotateSecret(app, name string) error {
	set, err := r.LoadManifests()
	if err != nil {
		return err
	}
	a := set.ByID(app)
	if a == nil {
		return fmt.Errorf("%w: app %s is not installed (or its manifest is invalid)", ErrNoSecret, app)
	}
	if e, ok := a.Exports[name]; !ok || !e.Secret {
		var names []string
		for k, e := range a.Exports {
			if e.Secret {
				names = append(names, k)
			}
		}
		slices.Sort(names)
		return fmt.Errorf("%w: app %s declares no secret %s (its secrets: %s)", ErrNoSecret, app, name, strings.Join(names, ", "))
	}
	return r.secrets.rotate(app, name)
}
