package reconciler

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/sirupsen/logrus"
	"go.podman.io/image/v5/docker/reference"

	"github.com/lockstep/lockstep/internal/atomicfile"
)

// Image policy: an app's image is built locally when its manifest has a build, else pulled, and only
// from a registry the operator allows. TLS verification is turned off only for a registry that both
// the app's manifest (registry.insecure) and the operator (RegistryPolicy.Insecure) name: a manifest,
// which may come from a vendor's catalog, cannot grant itself trust. Images are recorded per app in
// the state dir and removed only by Purge.

// RegistryPolicy is the operator's say over pulls (lockstepd's --allowed-registries and
// --insecure-registries). Entries are registries as image references name them: HOST or HOST:PORT,
// with docker.io for Docker Hub; a match is exact.
type RegistryPolicy struct {
	// Allowed lists the registries images may be pulled from; empty allows every registry.
	Allowed []string
	// Insecure lists the registries that may be used without TLS verification by apps whose manifest
	// asks for it (registry.insecure). They are allowed too.
	Insecure []string
}

var registryRE = regexp.MustCompile(`^[a-zA-Z0-9]([a-zA-Z0-9.-]*[a-zA-Z0-9])?(:[0-9]{1,5})?$`)

// Validate checks that every entry is HOST or HOST:PORT.
func (p RegistryPolicy) Validate() error {
	for _, l := range []struct {
		name    string
		entries []string
	}{{"--allowed-registries", p.Allowed}, {"--insecure-registries", p.Insecure}} {
		for _, e := range l.entries {
			if !registryRE.MatchString(e) {
				return fmt.Errorf("%s: %q is not a registry (HOST or HOST:PORT, e.g. docker.io or 10.0.0.5:5000)", l.name, e)
			}
		}
	}
	return nil
}

// ErrRegistryNotAllowed is a pull refused by the registry policy.
var ErrRegistryNotAllowed = errors.New("registry not allowed")

// check returns whether a pull of ref from its registry is allowed, and whether it verifies TLS given
// the registries the app's manifest names as insecure.
func (p RegistryPolicy) check(ref string, manifestInsecure []string) (tlsVerify bool, err error) {
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return true, fmt.Errorf("image %s: %w", ref, err)
	}
	reg := reference.Domain(named)
	if len(p.Allowed) > 0 && !slices.Contains(p.Allowed, reg) && !slices.Contains(p.Insecure, reg) {
		return true, fmt.Errorf("%w: image %s is from registry %s, which lockstepd's --allowed-registries (%s) does not list",
			ErrRegistryNotAllowed, ref, reg, strings.Join(append(append([]string{}, p.Allowed...), p.Insecure...), ","))
	}
	return !(slices.Contains(manifestInsecure, reg) && slices.Contains(p.Insecure, reg)), nil
}

// ensureImage makes the app's image present: built when the manifest has a build, else pulled under
// the registry policy. An image already in local storage is used as it is. The image is recorded as
// the app's, for Purge.
func (r *Reconciler) ensureImage(ctx context.Context, d *Desired) error {
	ref := d.Request.Image
	log := r.cfg.Log.WithFields(logrus.Fields{"app": d.App.ID, "container": d.Name(), "image": ref})
	ok, err := r.podman.ImageExists(ctx, ref)
	if err != nil {
		return fmt.Errorf("checking image %s: %w", ref, err)
	}
	if ok {
		r.recordImage(d.App.ID, ref)
		return nil
	}
	start := time.Now()
	if b := d.Build; b != nil {
		ctxDir := b.Context
		if !filepath.IsAbs(ctxDir) {
			ctxDir = filepath.Join(d.App.Dir, ctxDir)
		}
		cf := b.Containerfile
		if cf == "" {
			cf = "Containerfile"
		}
		log.WithField("context", ctxDir).Info("building image")
		out := &lineLog{line: func(l string) {
			if strings.HasPrefix(l, "STEP ") || strings.HasPrefix(l, "COMMIT") {
				log.Info("build: " + l)
			} else {
				log.Debug("build: " + l)
			}
		}}
		err := r.podman.Build(ctx, BuildRequest{ContextDir: ctxDir, Containerfile: filepath.Join(ctxDir, cf), Tag: b.Tag, Output: out})
		out.flush()
		if err != nil {
			return fmt.Errorf("building image %s: %w", b.Tag, err)
		}
		log.WithField("duration", time.Since(start).Round(time.Millisecond)).Info("image built")
		r.recordImage(d.App.ID, ref)
		return nil
	}
	tlsVerify, err := r.cfg.Registries.check(ref, d.App.Registry.Insecure)
	if err != nil {
		return fmt.Errorf("pulling image %s: %w", ref, err)
	}
	log.WithField("tls_verify", tlsVerify).Info("pulling image")
	progress := newPullProgress(log, time.Second)
	err = r.podman.Pull(ctx, ref, tlsVerify, progress)
	progress.flush()
	if err != nil {
		err = fmt.Errorf("pulling image %s: %w", ref, err)
		if named, perr := reference.ParseNormalizedNamed(ref); perr == nil && tlsVerify && slices.Contains(d.App.Registry.Insecure, reference.Domain(named)) {
			err = fmt.Errorf("%w (registry %s is in the manifest's registry.insecure but not in lockstepd's --insecure-registries, so TLS was verified)", err, reference.Domain(named))
		}
		return err
	}
	log.WithFields(logrus.Fields{"duration": time.Since(start).Round(time.Millisecond), "progress_lines": progress.lines}).Info("image pulled")
	r.recordImage(d.App.ID, ref)
	return nil
}

// lineLog is an io.Writer that hands each complete line (without its end, blank ones dropped) to line.
type lineLog struct {
	mu   sync.Mutex
	buf  []byte
	line func(string)
}

func (w *lineLog) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexAny(w.buf, "\r\n")
		if i < 0 {
			break
		}
		if l := strings.TrimSpace(string(w.buf[:i])); l != "" {
			w.line(l)
		}
		w.buf = w.buf[i+1:]
	}
	return len(p), nil
}

// flush hands over a last line that had no end.
func (w *lineLog) flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if l := strings.TrimSpace(string(w.buf)); l != "" {
		w.line(l)
	}
	w.buf = nil
}

// pullProgress logs a pull's progress lines: at Info at most once per interval (the first line at
// once, with a count of the lines held back since the last), every line at Debug.
type pullProgress struct {
	*lineLog
	lines int
}

func newPullProgress(log logrus.FieldLogger, every time.Duration) *pullProgress {
	p := &pullProgress{}
	var last time.Time
	held := 0
	p.lineLog = &lineLog{line: func(l string) {
		p.lines++
		now := time.Now()
		if last.IsZero() || now.Sub(last) >= every {
			e := log
			if held > 0 {
				e = log.WithField("more_lines", held)
			}
			e.Info("pull: " + l)
			last, held = now, 0
			return
		}
		held++
		log.Debug("pull: " + l)
	}}
	return p
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
			for _, d := range DesiredsFor(a, &Wiring{Roots: r.cfg.Roots}) {
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
		case errors.Is(err, ErrNotFound):
		case errors.Is(err, ErrConflict):
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
