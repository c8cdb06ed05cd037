package images

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/sirupsen/logrus"
	"go.podman.io/image/v5/docker/reference"

	"github.com/lockstep/lockstep/engine"
	lpolicy "github.com/lockstep/lockstep/policy"
	"github.com/lockstep/lockstep/spec"
)

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

// Check returns whether a pull of ref from its registry is allowed, and whether it verifies TLS given
// the registries the app's manifest names as insecure.
func (p RegistryPolicy) Check(ref string, manifestInsecure []string) (tlsVerify bool, err error) {
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

// Ensure makes d's image present: built when the manifest has a build, else pulled under the
// registry policy. An image already in local storage is used as it is. Progress goes to log.
func Ensure(ctx context.Context, p engine.Podman, log logrus.FieldLogger, policy RegistryPolicy, d *spec.Desired) error {
	ref := d.Request.Image
	log = log.WithFields(logrus.Fields{"app": d.App.ID, "container": d.Name(), "image": ref})
	ok, err := p.ImageExists(ctx, ref)
	if err != nil {
		return fmt.Errorf("checking image %s: %w", ref, err)
	}
	if ok {
		return nil
	}
	start := time.Now()
	if b := d.Build; b != nil {
		// Checked again here, symlinks resolved (the load path checked it once): the whole context
		// is uploaded to the build, so it must lie inside the manifest's directory.
		ctxDir, err := lpolicy.BuildContext(d.App.Dir, b.Context, b.Containerfile)
		if err != nil {
			return fmt.Errorf("building image %s: %s: build.context: %w", b.Tag, d.App.File, err)
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
		err = p.Build(ctx, engine.BuildRequest{ContextDir: ctxDir, Containerfile: filepath.Join(ctxDir, cf), Tag: b.Tag, Output: out})
		out.flush()
		if err != nil {
			return fmt.Errorf("building image %s: %w", b.Tag, err)
		}
		log.WithField("duration", time.Since(start).Round(time.Millisecond)).Info("image built")
		return nil
	}
	tlsVerify, err := policy.Check(ref, d.App.Registry.Insecure)
	if err != nil {
		return fmt.Errorf("pulling image %s: %w", ref, err)
	}
	log.WithField("tls_verify", tlsVerify).Info("pulling image")
	progress := newPullProgress(log, time.Second)
	err = p.Pull(ctx, ref, tlsVerify, progress)
	progress.flush()
	if err != nil {
		err = fmt.Errorf("pulling image %s: %w", ref, err)
		if named, perr := reference.ParseNormalizedNamed(ref); perr == nil && tlsVerify && slices.Contains(d.App.Registry.Insecure, reference.Domain(named)) {
			err = fmt.Errorf("%w (registry %s is in the manifest's registry.insecure but not in lockstepd's --insecure-registries, so TLS was verified)", err, reference.Domain(named))
		}
		return err
	}
	log.WithFields(logrus.Fields{"duration": time.Since(start).Round(time.Millisecond), "progress_lines": progress.lines}).Info("image pulled")
	return nil
}
