package reconciler

import "github.com/lockstep/lockstep/manifest"

// LoadManifests loads (and caches) the installed manifests now, for start-up and reload, and returns
// the set; passes reuse the cache.
func (r *Reconciler) LoadManifests() (*manifest.Set, error) {
	return r.manifests.LoadDir(r.cfg.AppsDir, r.cfg.Roots)
}
