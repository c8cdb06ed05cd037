package export

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"

	"github.com/lockstep/lockstep/manifest"
	"github.com/lockstep/lockstep/spec"
)

// Labels and annotations the export puts on Kubernetes objects.
const (
	LabelApp          = "io.lockstep.app"
	LabelCompanion    = "io.lockstep.companion"
	LabelCompanionOf  = "io.lockstep.companion-of"
	LabelName         = "app.kubernetes.io/name"
	AnnVersion        = "io.lockstep.version"
	AnnRequires       = "io.lockstep.requires"
	AnnStartsAfter    = "io.lockstep.starts-after"
	AnnDiskGB         = "io.lockstep.disk-gb"
	AnnNotExported    = "io.lockstep.hooks-not-exported"
	AnnPodmanInitType = "io.podman.annotations.init.container.type"
	hooksMount        = "/lockstep/hooks"
	initContainerName = "lockstep-pre-start"
)

// The Kubernetes objects, only the fields the export writes (the tests decode them strictly into
// the real API types).
type (
	meta struct {
		Name        string            `yaml:"name"`
		Labels      map[string]string `yaml:"labels,omitempty"`
		Annotations map[string]string `yaml:"annotations,omitempty"`
	}
	object struct {
		APIVersion string            `yaml:"apiVersion"`
		Kind       string            `yaml:"kind"`
		Metadata   meta              `yaml:"metadata"`
		Type       string            `yaml:"type,omitempty"`
		Data       map[string]string `yaml:"data,omitempty"`
		Spec       any               `yaml:"spec,omitempty"`
	}
	podSpec struct {
		HostNetwork                   bool        `yaml:"hostNetwork,omitempty"`
		HostAliases                   []hostAlias `yaml:"hostAliases,omitempty"`
		RestartPolicy                 string      `yaml:"restartPolicy"`
		TerminationGracePeriodSeconds *int64      `yaml:"terminationGracePeriodSeconds,omitempty"`
		InitContainers                []container `yaml:"initContainers,omitempty"`
		Containers                    []container `yaml:"containers"`
		Volumes                       []volume    `yaml:"volumes,omitempty"`
	}
	container struct {
		Name            string           `yaml:"name"`
		Image           string           `yaml:"image"`
		Command         []string         `yaml:"command,omitempty"`
		Args            []string         `yaml:"args,omitempty"`
		Env             []envVar         `yaml:"env,omitempty"`
		Ports           []containerPort  `yaml:"ports,omitempty"`
		VolumeMounts    []volumeMount    `yaml:"volumeMounts,omitempty"`
		SecurityContext *securityContext `yaml:"securityContext,omitempty"`
		LivenessProbe   *probe           `yaml:"livenessProbe,omitempty"`
		StartupProbe    *probe           `yaml:"startupProbe,omitempty"`
	}
	hostAlias struct {
		IP        string   `yaml:"ip"`
		Hostnames []string `yaml:"hostnames"`
	}
	envVar struct {
		Name      string `yaml:"name"`
		ValueFrom struct {
			ConfigMapKeyRef *keyRef `yaml:"configMapKeyRef,omitempty"`
			SecretKeyRef    *keyRef `yaml:"secretKeyRef,omitempty"`
		} `yaml:"valueFrom"`
	}
	keyRef struct {
		Name string `yaml:"name"`
		Key  string `yaml:"key"`
	}
	containerPort struct {
		ContainerPort int    `yaml:"containerPort"`
		HostPort      int    `yaml:"hostPort,omitempty"`
		HostIP        string `yaml:"hostIP,omitempty"`
		Protocol      string `yaml:"protocol"`
	}
	volumeMount struct {
		Name      string `yaml:"name"`
		MountPath string `yaml:"mountPath"`
		ReadOnly  bool   `yaml:"readOnly,omitempty"`
	}
	securityContext struct {
		RunAsUser              *int64        `yaml:"runAsUser,omitempty"`
		RunAsGroup             *int64        `yaml:"runAsGroup,omitempty"`
		ReadOnlyRootFilesystem bool          `yaml:"readOnlyRootFilesystem,omitempty"`
		Capabilities           *capabilities `yaml:"capabilities,omitempty"`
	}
	capabilities struct {
		Add  []string `yaml:"add,omitempty"`
		Drop []string `yaml:"drop,omitempty"`
	}
	probe struct {
		Exec struct {
			Command []string `yaml:"command"`
		} `yaml:"exec"`
		PeriodSeconds    int `yaml:"periodSeconds"`
		TimeoutSeconds   int `yaml:"timeoutSeconds"`
		FailureThreshold int `yaml:"failureThreshold"`
	}
	volume struct {
		Name     string `yaml:"name"`
		HostPath *struct {
			Path string `yaml:"path"`
			Type string `yaml:"type"`
		} `yaml:"hostPath,omitempty"`
		PersistentVolumeClaim *struct {
			ClaimName string `yaml:"claimName"`
		} `yaml:"persistentVolumeClaim,omitempty"`
		ConfigMap *struct {
			Name string `yaml:"name"`
		} `yaml:"configMap,omitempty"`
	}
	deploymentSpec struct {
		Replicas int `yaml:"replicas"`
		Strategy struct {
			Type string `yaml:"type"`
		} `yaml:"strategy"`
		Selector struct {
			MatchLabels map[string]string `yaml:"matchLabels"`
		} `yaml:"selector"`
		Template struct {
			Metadata meta    `yaml:"metadata"`
			Spec     podSpec `yaml:"spec"`
		} `yaml:"template"`
	}
	pvcSpec struct {
		AccessModes []string `yaml:"accessModes"`
		Resources   struct {
			Requests map[string]string `yaml:"requests"`
		} `yaml:"resources"`
	}
)

// statSource tells whether a hostPath source is an existing regular file (a variable for tests).
var statSource = func(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular()
}

// kubeApp collects one app's objects and warnings.
type kubeApp struct {
	app      *manifest.Loaded
	opts     Options
	appData  string
	objects  []object
	warnings []Warning
	claims   map[string]string // PVC name -> source, shared by the app and its companions
}

func (k *kubeApp) warn(format string, args ...any) {
	k.warnings = append(k.warnings, Warning{k.app.ID, fmt.Sprintf(format, args...)})
}

// Kube writes apps as Kubernetes YAML: one multi-document stream, apps in the given order, each app's
// ConfigMaps, Secrets and claims before its workload, then its companions.
func Kube(apps []*manifest.Loaded, opts Options) ([]byte, []Warning, error) {
	if err := opts.defaults(); err != nil {
		return nil, nil, err
	}
	var out bytes.Buffer
	var warnings []Warning
	for _, a := range apps {
		k := &kubeApp{app: a, opts: opts, appData: opts.Roots.AppData(a.ID), claims: map[string]string{}}
		if err := k.build(); err != nil {
			return nil, nil, fmt.Errorf("%s: %w", a.ID, err)
		}
		fmt.Fprintf(&out, "# app %s (%s %s), exported by lockstepctl export\n", a.ID, a.Name, a.Version)
		for _, w := range k.warnings {
			fmt.Fprintf(&out, "# warning: %s\n", w.Message)
		}
		for _, o := range k.objects {
			b, err := yamlMarshal(o)
			if err != nil {
				return nil, nil, err
			}
			out.WriteString("---\n")
			out.Write(b)
		}
		warnings = append(warnings, k.warnings...)
	}
	return out.Bytes(), warnings, nil
}

func yamlMarshal(o object) ([]byte, error) {
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(o); err != nil {
		return nil, err
	}
	err := enc.Close()
	return b.Bytes(), err
}

func (k *kubeApp) build() error {
	a := k.app
	ctrs := appContainers(&a.App)
	for _, c := range ctrs {
		if err := checkName("container name", c.Name); err != nil {
			return err
		}
	}
	if err := checkName("app id", a.ID); err != nil {
		return err
	}
	labels := map[string]string{LabelApp: a.ID, LabelName: a.ID}
	ann := map[string]string{AnnVersion: a.Version}
	if len(a.Requires.Apps) > 0 {
		ann[AnnRequires] = strings.Join(a.Requires.Apps, ",")
		k.warn("requires %s: Kubernetes has no start order between workloads; the annotation %s records it (see docs/scale-out.md)", ann[AnnRequires], AnnRequires)
	}
	if a.Requires.DiskGB > 0 {
		ann[AnnDiskGB] = strconv.FormatFloat(a.Requires.DiskGB, 'f', -1, 64)
	}
	if len(a.Registry.Insecure) > 0 {
		k.warn("registry.insecure %v is not exported: configure the nodes' container runtime", a.Registry.Insecure)
	}
	spec := podSpec{RestartPolicy: "Always"}
	vols := &podVolumes{k: k, spec: &spec, bySource: map[string]string{}}
	var grace time.Duration
	for i, c := range ctrs {
		base := a.ID
		if c.Name != a.ID {
			base = a.ID + "-" + c.Name
		}
		kc, err := k.container(c, base, vols, c.SecretEnv)
		if err != nil {
			return err
		}
		if c.Health != nil {
			kc.LivenessProbe, kc.StartupProbe = probes(c.Health)
		}
		spec.Containers = append(spec.Containers, kc)
		g := c.StopGracePeriod.D()
		if g == 0 {
			g = 10 * time.Second
		}
		grace = max(grace, g)
		if i == 0 {
			k.network(&spec, c.Name, c.Network, c.Ports, kc.Ports)
		} else if c.Network != ctrs[0].Network {
			k.warn("container %s: network %q differs from %s's %q: a Pod has one network", c.Name, c.Network, ctrs[0].Name, ctrs[0].Network)
		}
		if c.Build != nil {
			k.warn("container %s: image %s is built locally by lockstep: build and push it where the cluster pulls from", c.Name, c.image())
		}
	}
	spec.TerminationGracePeriodSeconds = ptr(int64(seconds(grace)))
	if isStack(&a.App) {
		// lockstep's app network knows a stack's containers by their names; in a Pod they share one
		// network namespace, so each name is the Pod itself.
		var names []string
		for _, c := range ctrs {
			names = append(names, c.Name)
		}
		spec.HostAliases = []hostAlias{{IP: "127.0.0.1", Hostnames: names}}
		k.warn("stack: its containers share the Pod's network (each name is an alias of 127.0.0.1), so two of them cannot listen on one port")
	}
	if err := k.hooks(&spec, vols, ctrs[0], ann); err != nil {
		return err
	}
	k.workload(a.ID, labels, ann, map[string]string{LabelApp: a.ID}, spec)

	for i, comp := range a.Companions {
		if err := k.companion(comp, i); err != nil {
			return err
		}
	}
	return nil
}

// companion exports a companion as a workload of its own: systemd supervises it apart from the app
// (it outlives the app's restarts), so it is not a container of the app's Pod.
func (k *kubeApp) companion(comp manifest.Companion, i int) error {
	if err := checkName("companion id", comp.ID); err != nil {
		return err
	}
	spec := podSpec{RestartPolicy: "Always"}
	vols := &podVolumes{k: k, spec: &spec, bySource: map[string]string{}}
	c := namedContainer{Name: comp.ID, Field: fmt.Sprintf("app.companions[%d]", i), Container: manifest.Container{Image: comp.Image, Command: comp.Command, Env: comp.Env,
		Ports: comp.Ports, Volumes: comp.Volumes, Network: comp.Network, Capabilities: comp.Capabilities, User: comp.User,
		StopGracePeriod: comp.StopGracePeriod, Mounts: comp.Mounts}}
	kc, err := k.container(c, comp.ID, vols, nil)
	if err != nil {
		return err
	}
	spec.Containers = []container{kc}
	k.network(&spec, comp.ID, comp.Network, comp.Ports, kc.Ports)
	g := comp.StopGracePeriod.D()
	if g == 0 {
		g = 10 * time.Second
	}
	spec.TerminationGracePeriodSeconds = ptr(int64(seconds(g)))
	labels := map[string]string{LabelCompanion: comp.ID, LabelCompanionOf: k.app.ID, LabelName: comp.ID}
	ann := map[string]string{AnnStartsAfter: k.app.ID}
	k.workload(comp.ID, labels, ann, map[string]string{LabelCompanion: comp.ID}, spec)
	return nil
}

func (k *kubeApp) workload(name string, labels, ann, selector map[string]string, spec podSpec) {
	if k.opts.Kind == KindDeployment {
		var d deploymentSpec
		d.Replicas = 1
		// One instance at a time, as lockstep runs it: its data is not meant to be shared.
		d.Strategy.Type = "Recreate"
		d.Selector.MatchLabels = selector
		d.Template.Metadata = meta{Name: name, Labels: labels, Annotations: ann}
		d.Template.Spec = spec
		k.objects = append(k.objects, object{APIVersion: "apps/v1", Kind: "Deployment", Metadata: meta{Name: name, Labels: labels, Annotations: ann}, Spec: d})
		return
	}
	k.objects = append(k.objects, object{APIVersion: "v1", Kind: "Pod", Metadata: meta{Name: name, Labels: labels, Annotations: ann}, Spec: spec})
}

// network maps the main container's network to the Pod's.
// ports are the manifest's strings, parsed ones their mapping (in the same order).
func (k *kubeApp) network(spec *podSpec, name, network string, ports []string, parsed []containerPort) {
	switch network {
	case "", "bridge":
	case "host":
		spec.HostNetwork = true
		for i, p := range parsed {
			if p.HostPort != 0 && p.HostPort != p.ContainerPort {
				k.warn("container %s: port %s: with the host's network Kubernetes needs hostPort equal to containerPort", name, ports[i])
			}
		}
	case "none":
		k.warn("container %s: network none has no Kubernetes equivalent: the Pod gets the cluster's network", name)
	default:
		k.warn("container %s: network %q is not exported: the Pod gets the cluster's network (podman kube play --network %s attaches it)", name, network, network)
	}
}

// container maps one container; env goes to the ConfigMap base-env (and the Secret base-secret for
// secretEnv keys).
func (k *kubeApp) container(c namedContainer, base string, vols *podVolumes, secretEnv map[string]bool) (container, error) {
	kc := container{Name: c.Name, Image: c.image(), Command: c.Entrypoint, Args: c.Command}
	cm, sec := map[string]string{}, map[string]string{}
	k.references(c)
	for _, key := range sortedKeys(c.Env) {
		var e envVar
		e.Name = key
		if secretEnv[key] {
			sec[key] = base64.StdEncoding.EncodeToString([]byte(c.Env[key]))
			e.ValueFrom.SecretKeyRef = &keyRef{base + "-secret", key}
		} else {
			cm[key] = c.Env[key]
			e.ValueFrom.ConfigMapKeyRef = &keyRef{base + "-env", key}
		}
		kc.Env = append(kc.Env, e)
	}
	if len(cm) > 0 {
		k.objects = append(k.objects, object{APIVersion: "v1", Kind: "ConfigMap", Metadata: meta{Name: base + "-env", Labels: map[string]string{LabelApp: k.app.ID}}, Data: cm})
	}
	if len(sec) > 0 {
		k.objects = append(k.objects, object{APIVersion: "v1", Kind: "Secret", Metadata: meta{Name: base + "-secret", Labels: map[string]string{LabelApp: k.app.ID}}, Type: "Opaque", Data: sec})
	}
	res, err := spec.Resolve(k.app, c.entry(), k.opts.Roots, nil)
	if err != nil {
		return kc, err
	}
	for _, p := range res.Ports {
		kc.Ports = append(kc.Ports, containerPort{ContainerPort: int(p.ContainerPort), HostPort: int(p.HostPort), HostIP: p.HostIP, Protocol: strings.ToUpper(p.Protocol)})
	}
	for i, v := range res.Volumes {
		name := vols.add(v.Source)
		kc.VolumeMounts = append(kc.VolumeMounts, volumeMount{Name: name, MountPath: v.Target, ReadOnly: v.ReadOnly()})
		for _, o := range v.Options {
			if o != "ro" && o != "rw" {
				k.warn("container %s: volume %s: option %s has no Kubernetes equivalent and is dropped", c.Name, c.Volumes[i], o)
			}
		}
	}
	for i, dm := range c.Mounts {
		name := vols.add(res.Mounts[i].Source)
		kc.VolumeMounts = append(kc.VolumeMounts, volumeMount{Name: name, MountPath: res.Mounts[i].Target, ReadOnly: true})
		if dm.From != k.app.ID {
			k.warn("container %s: mounts %s of %s's data (read-only; %s taken as an app id): the Pods must share the data (one node, or ReadWriteMany storage)", c.Name, dm.Path, dm.From, dm.From)
		}
	}
	var sc securityContext
	if c.User != "" {
		user, group, hasGroup := strings.Cut(c.User, ":")
		uid, err1 := strconv.ParseInt(user, 10, 64)
		gid, err2 := strconv.ParseInt(group, 10, 64)
		switch {
		case err1 != nil || (hasGroup && err2 != nil):
			k.warn("container %s: user %q is not numeric: Kubernetes takes only numeric ids (runAsUser), so the image's user applies", c.Name, c.User)
		default:
			sc.RunAsUser = ptr(uid)
			if hasGroup {
				sc.RunAsGroup = ptr(gid)
			}
		}
	}
	sc.ReadOnlyRootFilesystem = c.ReadOnly
	if len(res.CapAdd)+len(res.CapDrop) > 0 {
		sc.Capabilities = &capabilities{}
		for _, x := range res.CapAdd {
			sc.Capabilities.Add = append(sc.Capabilities.Add, kubeCap(x))
		}
		for _, x := range res.CapDrop {
			sc.Capabilities.Drop = append(sc.Capabilities.Drop, kubeCap(x))
		}
	}
	if sc != (securityContext{}) {
		kc.SecurityContext = &sc
	}
	return kc, nil
}

// references warns about ${APP.NAME} in env and command: lockstep resolves them at run time from
// the values apps export (secrets among them, kept in its state dir); the export writes them as is.
func (k *kubeApp) references(c namedContainer) {
	var refs []string
	for _, key := range sortedKeys(c.Env) {
		if strings.Contains(c.Env[key], "${") {
			refs = append(refs, "env "+key)
		}
	}
	for _, w := range append(append([]string{}, c.Entrypoint...), c.Command...) {
		if strings.Contains(w, "${") {
			refs = append(refs, "command")
			break
		}
	}
	if len(refs) > 0 {
		k.warn("container %s: %s use values lockstep resolves at run time (${APP.NAME}): written as is, set them by hand", c.Name, strings.Join(refs, ", "))
	}
}

// probes maps a health check: the liveness probe is the check itself; the startup probe gives the
// container its start period (failures during it do not count), then liveness takes over.
func probes(h *manifest.Health) (*probe, *probe) {
	e := spec.Effective(h) // podman's defaults, as lockstep's health monitor applies them
	interval, timeout, retries := e.Interval, e.Timeout, e.Retries
	live := &probe{PeriodSeconds: seconds(interval), TimeoutSeconds: seconds(timeout), FailureThreshold: retries}
	live.Exec.Command = h.Command
	start := *live
	start.FailureThreshold = retries + int((h.StartPeriod.D()+interval-1)/interval)
	return live, &start
}

// podVolumes names a Pod's volumes, one per distinct source.
type podVolumes struct {
	k        *kubeApp
	spec     *podSpec
	bySource map[string]string
	sources  []string // by volume index
}

func (pv *podVolumes) add(source string) string {
	if n, ok := pv.bySource[source]; ok {
		return n
	}
	name := fmt.Sprintf("vol-%d", len(pv.sources))
	pv.bySource[source] = name
	pv.sources = append(pv.sources, source)
	v := volume{Name: name}
	if pv.k.opts.Volumes == VolumesPVC {
		v.PersistentVolumeClaim = &struct {
			ClaimName string `yaml:"claimName"`
		}{pv.k.claim(source)}
	} else {
		// lockstep creates a missing source as a directory; an existing file stays a file.
		typ := "DirectoryOrCreate"
		if statSource(source) {
			typ = "File"
		}
		v.HostPath = &struct {
			Path string `yaml:"path"`
			Type string `yaml:"type"`
		}{source, typ}
	}
	pv.spec.Volumes = append(pv.spec.Volumes, v)
	return name
}

// claim returns the PersistentVolumeClaim for a bind-mount source, emitting it on first use:
// <app>-data for ${APP_DATA}, <app>-data-<path> below it, <app>-<path> for other roots. Each source
// gets a claim of its own (podman 4.3 ignores subPath on claims).
func (k *kubeApp) claim(source string) string {
	var name string
	if rel, ok := strings.CutPrefix(source, k.appData); ok && (rel == "" || strings.HasPrefix(rel, "/")) {
		name = k.app.ID + "-data" + dashed(rel)
	} else {
		name = k.app.ID + dashed(source)
	}
	if len(name) > 63 {
		name = strings.TrimRight(name[:56], "-")
	}
	if prev, ok := k.claims[name]; ok && prev == source {
		return name
	} else if ok {
		sum := sha256.Sum256([]byte(source))
		name = strings.TrimRight(name[:min(len(name), 56)], "-") + "-" + hex.EncodeToString(sum[:3])
	}
	k.claims[name] = source
	size := "1Gi"
	if k.app.Requires.DiskGB > 0 {
		size = strconv.FormatInt(int64(k.app.Requires.DiskGB*1e9+0.5), 10)
	}
	var s pvcSpec
	s.AccessModes = []string{"ReadWriteOnce"}
	s.Resources.Requests = map[string]string{"storage": size}
	k.objects = append(k.objects, object{APIVersion: "v1", Kind: "PersistentVolumeClaim",
		Metadata: meta{Name: name, Labels: map[string]string{LabelApp: k.app.ID}, Annotations: map[string]string{"io.lockstep.source": source}}, Spec: s})
	return name
}

// dashed turns a path into "-a-b" (lower case, runs of other characters as one dash).
func dashed(p string) string {
	var b strings.Builder
	dash := true
	for _, r := range strings.ToLower(p) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			if dash {
				b.WriteByte('-')
			}
			b.WriteRune(r)
			dash = false
		} else {
			dash = true
		}
	}
	return b.String()
}

// hooks exports the pre-start template hooks that need no rendering (no template actions) as an
// init container that copies them from a ConfigMap into the volume that holds their path, and
// ownership fixes as a chown in it.
func (k *kubeApp) hooks(spec *podSpec, vols *podVolumes, main namedContainer, ann map[string]string) error {
	var script []string
	data := map[string]string{}
	mounts := map[string]bool{}
	var init container
	var skipped []string
	for i, h := range k.app.Hooks.PreStart {
		desc := h.Template + " -> " + h.Path
		var b []byte
		if h.Template == "" {
			desc = "owner " + h.Owner + " of " + h.Path
		} else {
			var err error
			if b, err = os.ReadFile(filepath.Join(k.app.Dir, h.Template)); err != nil {
				return fmt.Errorf("pre-start hook %s: %w", h.Template, err)
			}
			if bytes.Contains(b, []byte("{{")) || !utf8.Valid(b) {
				k.warn("pre-start hook %s is a template lockstep renders on the host: not exported", desc)
				skipped = append(skipped, desc)
				continue
			}
		}
		dst := path.Join(k.appData, h.Path)
		// The volume whose source holds the file, longest source first.
		best := -1
		for j, src := range vols.sources {
			if (dst == src || strings.HasPrefix(dst, src+"/")) && (best < 0 || len(src) > len(vols.sources[best])) {
				best = j
			}
		}
		if best < 0 {
			k.warn("pre-start hook %s: no container mounts %s: not exported", desc, dst)
			skipped = append(skipped, desc)
			continue
		}
		vname := vols.bySource[vols.sources[best]]
		mountAt := "/lockstep/" + vname
		target := mountAt + strings.TrimPrefix(dst, vols.sources[best])
		if !mounts[vname] {
			mounts[vname] = true
			init.VolumeMounts = append(init.VolumeMounts, volumeMount{Name: vname, MountPath: mountAt})
		}
		if h.Template == "" { // an ownership fix
			script = append(script, fmt.Sprintf("chown -R %s %s", shellQuote(h.Owner), shellQuote(target)))
			continue
		}
		key := fmt.Sprintf("hook-%d", i)
		data[key] = string(b)
		mode := h.Mode
		if mode == "" {
			mode = "0644"
		}
		line := fmt.Sprintf("mkdir -p %s && cp %s %s && chmod %s %s",
			shellQuote(path.Dir(target)), shellQuote(hooksMount+"/"+key), shellQuote(target), mode, shellQuote(target))
		if h.Owner != "" {
			line += fmt.Sprintf(" && chown %s %s", shellQuote(h.Owner), shellQuote(target))
		}
		script = append(script, line)
	}
	if len(skipped) > 0 {
		ann[AnnNotExported] = strings.Join(skipped, ", ")
	}
	if len(script) == 0 {
		return nil
	}
	if len(data) > 0 {
		cmName := k.app.ID + "-hooks"
		k.objects = append(k.objects, object{APIVersion: "v1", Kind: "ConfigMap", Metadata: meta{Name: cmName, Labels: map[string]string{LabelApp: k.app.ID}}, Data: data})
		spec.Volumes = append(spec.Volumes, volume{Name: "lockstep-hooks", ConfigMap: &struct {
			Name string `yaml:"name"`
		}{cmName}})
		init.VolumeMounts = append([]volumeMount{{Name: "lockstep-hooks", MountPath: hooksMount, ReadOnly: true}}, init.VolumeMounts...)
	}
	init.Name = initContainerName
	init.Image = main.image()
	init.Command = []string{"sh", "-c", "set -e\n" + strings.Join(script, "\n")}
	spec.InitContainers = []container{init}
	// podman removes a "once" init container after it ran, and 4.3.1 may try while it is still
	// running ("failed to remove once init container ... as it is running"); "always" keeps it and
	// runs it before every start of the Pod, closer to what lockstep means by pre-start hooks.
	// Kubernetes ignores the annotation.
	ann[AnnPodmanInitType] = "always"
	return nil
}

// shellQuote quotes a word for sh.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func seconds(d time.Duration) int { return int((d + time.Second - 1) / time.Second) }

func ptr[T any](v T) *T { return &v }
