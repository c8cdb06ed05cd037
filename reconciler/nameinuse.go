package reconciler

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/lockstep/lockstep/engine"
	"github.com/lockstep/lockstep/spec"
)

// A create refused with "name already in use" for a name the pass's List did not show: what a
// lockstepd killed in the middle of an install leaves behind (SIGKILL, power loss). podman goes on
// with a create whose client is gone, so the next lockstepd's List can miss a container that appears
// a moment later; and podman itself, killed mid-create, can leave a storage-only container (podman ps
// --external) that holds the name without being a podman container. The create is not left failing
// for the timer: the name is looked at again and
//   - a container labelled for this app with the spec this pass wants is lockstep's own, made by the
//     interrupted install: it is taken as this install's container (started if it is not running);
//   - a container labelled for this app with another spec (or as another member) is a leftover of an
//     earlier lockstep: removed (never its volumes) and the create made again;
//   - a container without this app's label is someone else's: left alone and reported as a clash,
//     exactly as when List shows it (the next pass plans its adoption);
//   - no podman container but a storage-only one of that name with the image this create wants is
//     the interrupted create's storage: removed (podman rm does the same for a storage-only name);
//     with another image it is reported and left alone;
//   - nothing at all: the other create has just cleaned up; create again.
// A storage-only container is removed only once the name has stayed so for 3*nameInUseDelay (looked
// at nameInUseDelay, then twice that, apart): podman reserves the name in storage before it records
// the container, so for a moment a create still in progress looks exactly like an abandoned one. At
// most nameInUseAttempts creates are made in all; if the name is still taken (or taken by someone
// else's container) the pass asks for another pass within NameInUseRetry.

// NameInUseRetry is how soon another pass comes when a name stayed taken through a pass's attempts.
const NameInUseRetry = time.Second

const (
	nameInUseAttempts = 5
	nameInUseDelay    = 250 * time.Millisecond
)

// storageLister is implemented by Podman implementations that can list storage-only containers
// (*podman.Client); without it a storage-only container is reported, never removed.
type storageLister interface {
	// ListStorage lists the storage-only containers, with their image's ID as Image.
	ListStorage(ctx context.Context) ([]engine.Container, error)
	ImageID(ctx context.Context, ref string) (string, error)
}

// createAfterNameInUse resolves a create refused with ErrNameInUse (see above) and returns the id of
// the app's container: created again, or the interrupted install's, adopted as is.
func (r *Reconciler) createAfterNameInUse(ctx context.Context, d *spec.Desired, createErr error) (id string, err error) {
	delay, waited := nameInUseDelay, time.Duration(0)
	err = createErr
	for attempt := 1; attempt < nameInUseAttempts; attempt++ {
		in, ierr := r.podman.Inspect(ctx, d.Name())
		switch {
		case ierr == nil && in.Labels[spec.LabelApp] != d.App.ID:
			r.nameInUseRetry.Store(true) // the next pass sees it in the list and plans its adoption
			return "", fmt.Errorf("creating container: the name %s is taken by a container lockstep did not create (%.12s); it is left untouched: remove or rename it to let lockstep install the app", d.Name(), in.ID)
		case ierr == nil && in.Labels[spec.LabelSpecHash] != "" && in.Labels[spec.LabelSpecHash] == d.Hashes[in.Labels[spec.LabelHashScheme]] && in.Labels[spec.LabelContainer] == d.Member:
			r.cfg.Log.WithField("container", d.Name()).Info("create found the container made by an interrupted install; taking it")
			return in.ID, nil
		case ierr == nil:
			// Stopped first with its grace period, as remove does, should it have been started.
			r.cfg.Log.WithField("container", d.Name()).Info("create found a leftover container of an earlier spec; removing it")
			if err := r.podman.Stop(ctx, in.ID, 0); err != nil && !errors.Is(err, engine.ErrNotFound) {
				r.cfg.Log.WithError(err).WithField("container", d.Name()).Warn("stopping the leftover container")
			}
			if err := r.podman.Remove(ctx, in.ID); err != nil && !errors.Is(err, engine.ErrNotFound) {
				return "", fmt.Errorf("removing leftover container %s: %w", d.Name(), err)
			}
		case errors.Is(ierr, engine.ErrNotFound) && waited >= 3*nameInUseDelay:
			if err := r.removeStorageOnly(ctx, d); err != nil {
				return "", err
			}
		case errors.Is(ierr, engine.ErrNotFound):
			// A create in progress, or one that has just given up: look again after a while.
			select {
			case <-ctx.Done():
				return "", ctx.Err()
			case <-time.After(delay):
			}
			waited += delay
			delay *= 2
		default:
			return "", fmt.Errorf("creating container: %w; inspecting the name: %w", createErr, ierr)
		}
		if id, err = r.podman.Create(ctx, d.Request); err == nil || !errors.Is(err, engine.ErrNameInUse) {
			break
		}
	}
	if err != nil {
		if errors.Is(err, engine.ErrNameInUse) {
			r.nameInUseRetry.Store(true)
		}
		return "", fmt.Errorf("creating container: %w", err)
	}
	return id, nil
}

// removeStorageOnly removes a storage-only container holding d's name, if it has d's image.
func (r *Reconciler) removeStorageOnly(ctx context.Context, d *spec.Desired) error {
	p := r.podman
	if u, ok := p.(interface{ Unwrap() engine.Podman }); ok { // under the deadlines (package deadline)
		p = u.Unwrap()
	}
	sl, ok := p.(storageLister)
	if !ok {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, r.cfg.Timeouts.Call)
	defer cancel()
	cs, err := sl.ListStorage(ctx)
	if err != nil {
		return fmt.Errorf("listing storage-only containers: %w", err)
	}
	for _, c := range cs {
		if c.Name != d.Name() {
			continue
		}
		want, err := sl.ImageID(ctx, d.Request.Image)
		if err != nil {
			return fmt.Errorf("creating container: the name %s is taken by a storage-only container; looking up image %s: %w", d.Name(), d.Request.Image, err)
		}
		if c.Image != want {
			return fmt.Errorf("creating container: the name %s is taken by a storage-only container (%.12s, image %.12s, not %s: not a podman container, perhaps another tool's); it is left untouched: remove it (podman rm --storage %s) to let lockstep install the app", d.Name(), c.ID, c.Image, d.Request.Image, d.Name())
		}
		r.cfg.Log.WithField("container", d.Name()).Info("create found the storage of an interrupted create; removing it")
		if err := r.podman.Remove(ctx, d.Name()); err != nil && !errors.Is(err, engine.ErrNotFound) {
			return fmt.Errorf("removing storage-only container %s: %w", d.Name(), err)
		}
	}
	return nil
}
