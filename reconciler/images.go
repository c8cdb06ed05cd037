package reconciler

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/lockstep/lockstep/engine"
	"github.com/lockstep/lockstep/internal/atomicfile"
	"github.com/lockstep/lockstep/reconciler/images"
	"github.com/lockstep/lockstep/spec"
)

// RegistryPolicy is the operator's say over pulls (package images).
type RegistryPolicy = images.RegistryPolicy

// ErrRegistryNotAllowed is a pull refused by the registry policy (package images).
var ErrRegistryNotAllowed = images.ErrRegistryNotAllowed

// ensureImage makes d's image present (package images) and records it as the app's, for Purge.
func (r *Reconciler) ensureImage(ctx context.Context, d *spec.Desired) error {
	if err := images.Ensure(ctx, r.podman, r.cfg.Log, r.cfg.Registries, d); err != nil {
		return err
	}
	r.recordImage(d.App.ID, d.Request.Image)
	return nil
}

// imageRecords remembers, in the state dir, every image each app has used, so that Purge can remove
// them after the app and its manifest are gone.
type imageRecords struct {
	mu     sync.Mutex
	loaded bool
	byApp  map[string][]string
}

const imagesFile = "images.json"

// loadImagesLocked reads the records once (r.images.mu held).
func (r *Reconciler) loadImagesLocked() {
	ir := &r.images
	if ir.loaded {
		return
	}
	ir.byApp = map[string][]string{}
	b, err := os.ReadFile(filepath.Join(r.cfg.StateDir, imagesFile))
	if err == nil {
		if err := json.Unmarshal(b, &ir.byApp); err != nil {
			r.cfg.Log.WithError(err).Warnf("ignoring unreadable %s", imagesFile)
			ir.byApp = map[string][]string{}
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		r.cfg.Log.WithError(err).Warnf("reading %s", imagesFile)
	}
	ir.loaded = true
}

func (r *Reconciler) saveImagesLocked() {
	b, _ := json.MarshalIndent(r.images.byApp, "", "  ")
	if err := atomicfile.Write(filepath.Join(r.cfg.StateDir, imagesFile), b, 0o644); err != nil {
		r.cfg.Log.WithError(err).Error("saving image records")
	}
}

// recordImage notes that app uses image ref.
func (r *Reconciler) recordImage(app, ref string) {
	ir := &r.images
	ir.mu.Lock()
	defer ir.mu.Unlock()
	r.loadImagesLocked()
	if slices.Contains(ir.byApp[app], ref) {
		return
	}
	ir.byApp[app] = append(ir.byApp[app], ref)
	sort.Strings(ir.byApp[app])
	r.saveImagesLocked()
}

// PurgeTimeout bounds the podman calls of one Purge.
const PurgeTimeout = 2 * time.Minute

// purgeImages removes the images app id used (as recorded, and as the last report shows), except
// those an installed app's manifest names and those a container uses (podman refuses to remove them
// without force, and lockstep never forces).
func (r *Reconciler) purgeImages(ctx context.Context, id string) error {
	ir := &r.images
	ir.mu.Lock()
	r.loadImagesLocked()
	refs := append([]string{}, ir.byApp[id]...)
	ir.mu.Unlock()
	if last := r.Last(); last != nil {
		for _, a := range last.Apps {
			if a.ID == id && a.Image != "" && !slices.Contains(refs, a.Image) {
				refs = append(refs, a.Image)
			}
		}
	}
	keep := map[string]string{}
	if set, err := r.manifests.LoadDir(r.cfg.AppsDir, r.cfg.Roots); err == nil {
		for _, a := range set.Apps {
			if a.ID == id {
				continue
			}
			for _, d := range spec.DesiredsFor(a, &spec.Wiring{Roots: r.cfg.Roots}) {
				keep[normImage(d.Request.Image)] = a.ID
			}
			for _, c := range a.Companions {
				keep[normImage(c.Image)] = a.ID
			}
		}
	} else {
		return fmt.Errorf("purging images of %s: reading installed apps: %w", id, err)
	}
	log := r.cfg.Log.WithField("app", id)
	var failed []string
	var errs []string
	for _, ref := range refs {
		if other, ok := keep[normImage(ref)]; ok {
			log.WithFields(logrus.Fields{"image": ref, "used_by": other}).Info("purge: image kept, installed app uses it")
			continue
		}
		err := r.podman.RemoveImage(ctx, ref)
		switch {
		case err == nil:
			log.WithField("image", ref).Info("purge: image removed")
		case errors.Is(err, engine.ErrNotFound):
		case errors.Is(err, engine.ErrConflict):
			log.WithField("image", ref).Info("purge: image kept, a container uses it")
		default:
			failed = append(failed, ref)
			errs = append(errs, err.Error())
		}
	}
	ir.mu.Lock()
	if len(failed) == 0 {
		delete(ir.byApp, id)
	} else {
		ir.byApp[id] = failed
	}
	r.saveImagesLocked()
	ir.mu.Unlock()
	if len(errs) > 0 {
		return fmt.Errorf("purging images of %s: %s", id, strings.Join(errs, "; "))
	}
	return nil
}
