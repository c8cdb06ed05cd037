package reconciler

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/lockstep/lockstep/manifest"
	"github.com/lockstep/lockstep/outcome"
	"github.com/lockstep/lockstep/spec"
)

// Errors of the install, remove and purge operations, for callers to map to their own (D-Bus errors,
// exit codes); they are package outcome's.
var (
	ErrNoSuchApp       = outcome.ErrNoSuchApp
	ErrInvalidManifest = outcome.ErrInvalidManifest
	ErrNotInstalled    = outcome.ErrNotInstalled
	// ErrNeeded: the app provides what other installed apps require.
	ErrNeeded = outcome.ErrNeeded
	// ErrMissingDependency: the app requires what no installed app provides.
	ErrMissingDependency = outcome.ErrMissingDependency
)

// enable installs catalog app id (OpInstall): it validates the catalog manifest and links it into the apps dir
// (atomically: a symlink made under a temporary name, then renamed). The next pass installs it.
// Enabling an app that is already installed is not an error.
func (r *Reconciler) enable(id string) error {
	if r.cfg.CatalogDir == "" {
		return fmt.Errorf("%w: no catalog dir configured", ErrNoSuchApp)
	}
	src := filepath.Join(r.cfg.CatalogDir, id+".yaml")
	if !manifest.IsManifestName(id+".yaml") || filepath.Base(src) != id+".yaml" {
		return fmt.Errorf("%w: %q", ErrNoSuchApp, id)
	}
	if _, err := os.Stat(src); err != nil {
		return fmt.Errorf("%w: %q is not in the catalog %s", ErrNoSuchApp, id, r.cfg.CatalogDir)
	}
	l, ps := manifest.LoadFile(src, r.cfg.Roots)
	if len(ps) > 0 {
		return fmt.Errorf("%w: %v", ErrInvalidManifest, ps)
	}
	if err := r.checkDependencies(l); err != nil {
		return err
	}
	dst := filepath.Join(r.cfg.AppsDir, id+".yaml")
	if _, err := os.Lstat(dst); err != nil { // not installed yet: what the pass would refuse, refused now
		if set, err := r.LoadManifests(); err == nil {
			if ps := set.Conflicts(l); len(ps) > 0 {
				return fmt.Errorf("%w: %v", ErrInvalidManifest, ps)
			}
		}
		if l.Requires.DiskGB > 0 {
			if err := r.checkDisk(l); err != nil {
				return err
			}
		}
	}
	if target, err := os.Readlink(dst); err == nil && target == src {
		return nil
	}
	if fi, err := os.Lstat(dst); err == nil && fi.Mode().IsRegular() {
		return nil // the operator's own manifest for this id is installed; leave it
	}
	tmp := filepath.Join(r.cfg.AppsDir, fmt.Sprintf(".%s.yaml.%d", id, time.Now().UnixNano()))
	if err := os.Symlink(src, tmp); err != nil {
		return fmt.Errorf("installing %s: %w", id, err)
	}
	if err := os.Rename(tmp, dst); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("installing %s: %w", id, err)
	}
	return syncDir(r.cfg.AppsDir)
}

// disable uninstalls app id (OpRemove): a symlink into the catalog is removed; an operator's own manifest file is
// kept as a hidden file (.<id>.yaml.removed) so that nothing they wrote is lost. The next pass stops
// and removes the container; data is kept.
func (r *Reconciler) disable(id string) error {
	dst := filepath.Join(r.cfg.AppsDir, id+".yaml")
	if filepath.Base(dst) != id+".yaml" {
		return fmt.Errorf("%w: %q", ErrNotInstalled, id)
	}
	fi, err := os.Lstat(dst)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w: %q", ErrNotInstalled, id)
	}
	if err != nil {
		return fmt.Errorf("removing %s: %w", id, err)
	}
	if err := r.checkNotNeeded(id); err != nil {
		return err
	}
	if fi.Mode()&fs.ModeSymlink != 0 {
		err = os.Remove(dst)
	} else {
		err = os.Rename(dst, filepath.Join(r.cfg.AppsDir, "."+id+".yaml.removed"))
	}
	if err != nil {
		return fmt.Errorf("removing %s: %w", id, err)
	}
	return syncDir(r.cfg.AppsDir)
}

// checkDependencies refuses to install an app whose required dependencies no installed app answers
// for, naming the catalog apps that would.
func (r *Reconciler) checkDependencies(app *manifest.Loaded) error {
	set, err := r.LoadManifests()
	if err != nil {
		return nil // the pass reports the directory
	}
	var missing []string
	var catalog []*manifest.Loaded // read once, when a dependency is missing
	for _, dep := range app.Requires.Apps {
		if _, ok := set.Providers[dep]; ok {
			continue
		}
		if catalog == nil {
			catalog = r.catalogApps()
		}
		var cands []string
		for _, c := range catalog {
			if c.ID == dep || slices.Contains(c.Provides, dep) {
				cands = append(cands, c.ID)
			}
		}
		msg := dep
		if len(cands) > 0 {
			msg += " (install " + strings.Join(cands, " or ") + ")"
		} else {
			msg += " (no catalog app provides it)"
		}
		missing = append(missing, msg)
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: %s requires %s, not installed", ErrMissingDependency, app.ID, strings.Join(missing, ", "))
	}
	return nil
}

// catalogApps returns the catalog's valid manifests, each checked on its own: alternatives such as
// two bitcoin nodes may well clash with each other (ports), which a set check would refuse.
func (r *Reconciler) catalogApps() []*manifest.Loaded {
	out := []*manifest.Loaded{}
	entries, _ := os.ReadDir(r.cfg.CatalogDir)
	for _, e := range entries {
		if !manifest.IsManifestName(e.Name()) {
			continue
		}
		if c, ps := manifest.LoadFile(filepath.Join(r.cfg.CatalogDir, e.Name()), r.cfg.Roots); len(ps) == 0 {
			out = append(out, c)
		}
	}
	return out
}

// checkNotNeeded refuses to remove an app that answers for a requirement of another installed app
// (as itself or as a provider), unless another installed app would answer for it instead.
func (r *Reconciler) checkNotNeeded(id string) error {
	set, err := r.LoadManifests()
	if err != nil {
		return nil // nothing known: the pass reports the directory
	}
	var rest []*manifest.Loaded
	for _, a := range set.Apps {
		if a.ID != id {
			rest = append(rest, a)
		}
	}
	after := manifest.Providers(rest)
	var needers []string
	for _, a := range rest {
		for _, dep := range a.Requires.Apps {
			if set.Providers[dep] == id && after[dep] == "" {
				needers = append(needers, fmt.Sprintf("%s (requires %s)", a.ID, dep))
				break
			}
		}
	}
	if len(needers) > 0 {
		return fmt.Errorf("%w: %s is needed by %s; remove them first", ErrNeeded, id, strings.Join(needers, ", "))
	}
	return nil
}

// Apply is the runner's: it checks and applies one operation (runner.go), in the runner's goroutine
// before a pass, so that the check still holds when the change is made. Its error is redacted.
func (r *Reconciler) Apply(ctx context.Context, op Op) error {
	return r.secrets.RedactError(r.apply(ctx, op))
}

func (r *Reconciler) apply(ctx context.Context, op Op) error {
	switch op.Kind {
	case OpInstall:
		return r.enable(op.App)
	case OpRemove:
		return r.disable(op.App)
	case OpPurge:
		return r.purge(ctx, op.App)
	case OpRotateSecret:
		return r.rotateSecret(op.App, op.Name)
	case OpReload:
		return nil // the pass reads the apps dir again; nothing to change before it
	}
	return fmt.Errorf("unknown operation %q", op.Kind)
}

// purge deletes app id's data dir, then the images it used that no installed app names and no container
// uses (images.go). It refuses while the app is installed or podman shows a container of it (or cannot
// be asked): data and images go only after the app is gone. Uninstalling alone never removes an image.
// Only the runner calls it (OpPurge): a reinstall queued meanwhile is applied after it.
func (r *Reconciler) purge(ctx context.Context, id string) error {
	if _, err := os.Lstat(filepath.Join(r.cfg.AppsDir, id+".yaml")); err == nil {
		return fmt.Errorf("purging %s: the app is still installed", id)
	}
	cs, err := r.podman.List(ctx)
	if err != nil {
		return fmt.Errorf("purging %s: cannot tell whether a container of it is left: %w", id, err)
	}
	for _, c := range cs {
		if c.Labels[spec.LabelApp] == id {
			return fmt.Errorf("purging %s: its container %s is still there (%s)", id, c.Name, c.State)
		}
	}
	dir := r.cfg.Roots.AppData(id)
	if filepath.Dir(dir) != filepath.Clean(r.cfg.Roots.DataRoot) {
		return fmt.Errorf("purging %s: refusing %s", id, dir)
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("purging %s: %w", id, err)
	}
	// Its secrets go with its data: a reinstall starts with new ones.
	if err := os.RemoveAll(r.secrets.path(id, "")); err != nil {
		return fmt.Errorf("purging %s: secrets: %w", id, err)
	}
	r.secrets.forget(id)
	ctx, cancel := context.WithTimeout(ctx, PurgeTimeout)
	defer cancel()
	return r.purgeImages(ctx, id)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
