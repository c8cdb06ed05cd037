package reconciler

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/lockstep/lockstep/internal/atomicfile"
	"github.com/lockstep/lockstep/manifest"
	"github.com/lockstep/lockstep/outcome"
)

// Secrets are exported values lockstep generates: 32 random bytes, hex, made once and kept in
// STATE/secrets/APP/NAME (directories 0700, files 0600). Their values go into the containers and
// files that use them and nowhere else: never a log line, a report, a D-Bus reply or an error.
type secretStore struct {
	dir   string
	mu    sync.Mutex
	cache map[string]string // APP/NAME -> value
}

func newSecretStore(stateDir string) *secretStore {
	return &secretStore{dir: filepath.Join(stateDir, "secrets"), cache: map[string]string{}}
}

// ErrNoSecret is returned by RotateSecret for an app or name that declares no secret.
var ErrNoSecret = outcome.ErrNoSecret

func (s *secretStore) path(app, name string) string { return filepath.Join(s.dir, app, name) }

// get returns the secret, generating and saving it the first time.
func (s *secretStore) get(app, name string) (string, error) {
	key := app + "/" + name
	s.mu.Lock()
	defer s.mu.Unlock()
	if v, ok := s.cache[key]; ok {
		return v, nil
	}
	b, err := os.ReadFile(s.path(app, name))
	switch {
	case err == nil:
		v := strings.TrimSpace(string(b))
		if v == "" {
			return "", fmt.Errorf("secret %s of app %s: %s is empty", name, app, s.path(app, name))
		}
		s.cache[key] = v
		return v, nil
	case !errors.Is(err, fs.ErrNotExist):
		return "", fmt.Errorf("secret %s of app %s: %w", name, app, unwrapPathErr(err))
	}
	v, err := s.writeNewLocked(app, name)
	if err != nil {
		return "", err
	}
	return v, nil
}

// peek returns the secret if it exists, reading it without caching, and "" when it does not exist
// yet: it never creates a file or a directory (lockstepctl plan).
func (s *secretStore) peek(app, name string) (string, error) {
	s.mu.Lock()
	v, ok := s.cache[app+"/"+name]
	s.mu.Unlock()
	if ok {
		return v, nil
	}
	b, err := os.ReadFile(s.path(app, name))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "", nil
	case err != nil:
		return "", fmt.Errorf("secret %s of app %s: %w", name, app, unwrapPathErr(err))
	}
	return strings.TrimSpace(string(b)), nil
}

// forget drops an app's cached secrets (after a purge).
func (s *secretStore) forget(app string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k := range s.cache {
		if strings.HasPrefix(k, app+"/") {
			delete(s.cache, k)
		}
	}
}

// rotate replaces the secret with a new random value.
func (s *secretStore) rotate(app, name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, err := s.writeNewLocked(app, name)
	return err
}

func (s *secretStore) writeNewLocked(app, name string) (string, error) {
	buf := make([]byte, 32)
	if _, err := rand.Read(buf); err != nil {
		return "", fmt.Errorf("secret %s of app %s: generating: %w", name, app, err)
	}
	v := hex.EncodeToString(buf)
	dir := filepath.Join(s.dir, app)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("secret %s of app %s: %w", name, app, unwrapPathErr(err))
	}
	_ = os.Chmod(s.dir, 0o700)
	if err := atomicfile.Write(s.path(app, name), []byte(v+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("secret %s of app %s: saving: %w", name, app, unwrapPathErr(err))
	}
	s.cache[app+"/"+name] = v
	return v, nil
}

func unwrapPathErr(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return fmt.Errorf("%s %s: %w", pe.Op, pe.Path, pe.Err)
	}
	return err
}

// exportValue is the value of an app's export: fixed, a container's hostname, or a secret.
func (r *Reconciler) exportValue(app *manifest.Loaded, name string) (string, error) {
	e, ok := app.Exports[name]
	if !ok {
		return "", fmt.Errorf("app %s exports no %s", app.ID, name)
	}
	switch {
	case e.Secret:
		return r.secrets.get(app.ID, name)
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

// peekExportValue is exportValue for an observer: a secret is read, never made.
func (r *Reconciler) peekExportValue(app *manifest.Loaded, name string) (string, error) {
	if e, ok := app.Exports[name]; ok && e.Secret {
		return r.secrets.peek(app.ID, name)
	}
	return r.exportValue(app, name)
}

// RotateSecret gives an app's secret a new value. The pass it asks for re-renders what uses the secret
// and restarts every consumer once, providers first; the value itself is never returned.
func (r *Reconciler) RotateSecret(app, name string) error {
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
