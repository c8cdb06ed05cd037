// Package export turns app manifests into what other engines run: Kubernetes YAML (a Pod or a
// Deployment per app, ConfigMaps, Secrets, PersistentVolumeClaims) that `podman kube play` and a
// cluster accept, and self-contained Quadlet bundles for fleet tools. It is pure apart from reading
// pre-start hook templates (and, for hostPath volumes, whether a source is an existing file).
//
// Everything is written over the list of containers appContainers returns, so that an app made of
// several containers (a stack) becomes a Pod with several containers by changing that one function.
package export

import (
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/lockstep/lockstep/manifest"
	"github.com/lockstep/lockstep/spec"
)

// namedContainer is one container of an app, with the name it has inside the app's Pod or bundle.
type namedContainer struct {
	// Name is the container's name inside the app's Pod: the app id for a one-container app, the
	// member's name (db, api, web) in a stack. A DNS label.
	Name string
	// PodmanName is the name lockstep gives it in podman: the app id, or APP-NAME in a stack.
	PodmanName string
	manifest.Container
	// Field is its manifest path (app.container, app.containers[i]), for errors.
	Field string
	// Health is the container's health check (nil: none).
	Health *manifest.Health
	// SecretEnv names the env keys whose values are secrets: they go into a Secret, not a ConfigMap.
	// Manifests cannot give a secret's value offline (lockstep generates and keeps secrets in its
	// state dir, and env refers to them as ${APP.NAME}), so it is empty today.
	SecretEnv map[string]bool
}

// appContainers lists an app's containers in start order: the one container named after the app,
// or a stack's members under their names. It is the one place the export learns an app's shape.
func appContainers(a *manifest.App) []namedContainer {
	var out []namedContainer
	for _, m := range a.Members() {
		name := m.Name
		if name == "" {
			name = a.ID
		}
		out = append(out, namedContainer{Name: name, PodmanName: m.PodmanName, Container: *m.Container, Field: m.Field, Health: m.Health})
	}
	return out
}

// entry is what spec.Resolve reads of the container.
func (c namedContainer) entry() spec.Entry {
	return spec.Entry{Field: c.Field, Ports: c.Ports, Volumes: c.Volumes, Mounts: c.Mounts, Capabilities: c.Capabilities}
}

// isStack tells whether the app declares several named containers.
func isStack(a *manifest.App) bool { return len(a.Containers) > 0 }

// image is the image a container runs: the build's tag when it is built locally.
func (c namedContainer) image() string {
	if c.Image == "" && c.Build != nil {
		return c.Build.Tag
	}
	return c.Image
}

// Options say how to export.
type Options struct {
	// Roots resolve ${APP_DATA} and bind-mount sources, as lockstepd's flags do.
	Roots manifest.Roots
	// Kind is "pod" (default) or "deployment".
	Kind string
	// Volumes is "hostpath" (default) or "pvc".
	Volumes string
}

// Kinds and volume modes accepted in Options.
const (
	KindPod        = "pod"
	KindDeployment = "deployment"
	VolumesHost    = "hostpath"
	VolumesPVC     = "pvc"
)

func (o *Options) defaults() error {
	if o.Kind == "" {
		o.Kind = KindPod
	}
	if o.Volumes == "" {
		o.Volumes = VolumesHost
	}
	if o.Kind != KindPod && o.Kind != KindDeployment {
		return fmt.Errorf("kind %q: want %s or %s", o.Kind, KindPod, KindDeployment)
	}
	if o.Volumes != VolumesHost && o.Volumes != VolumesPVC {
		return fmt.Errorf("volumes %q: want %s or %s", o.Volumes, VolumesHost, VolumesPVC)
	}
	return nil
}

// Warning is something of an app that the export could not carry over, or carried over only in part.
type Warning struct {
	App, Message string
}

func (w Warning) String() string { return w.App + ": " + w.Message }

var dnsLabel = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?$`)

// checkName rejects names Kubernetes would not accept as object or container names.
func checkName(what, n string) error {
	if len(n) > 63 || !dnsLabel.MatchString(n) {
		return fmt.Errorf("%s %q is not a DNS label (a-z, 0-9 and -, not at either end, at most 63): Kubernetes rejects it", what, n)
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// kubeCap writes a capability (as spec spells it: CAP_X, or ALL) as Kubernetes wants it: without CAP_.
func kubeCap(c string) string {
	return strings.TrimPrefix(c, "CAP_")
}
