package export

import (
	"bytes"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/lockstep/lockstep/manifest"
	"github.com/lockstep/lockstep/quadlet"
	"github.com/lockstep/lockstep/spec"
)

// LabelExportedFrom marks the containers of an exported bundle. It is not io.lockstep.app: a
// lockstepd on the same host must not take them for containers it created.
const LabelExportedFrom = "io.lockstep.exported-from"

// BundleOptions say how to write a Quadlet bundle.
type BundleOptions struct {
	Roots manifest.Roots
	// WantedBy is the target the units are enabled for (default multi-user.target; default.target
	// for a user's systemd).
	WantedBy string
}

// Bundle writes app as a self-contained Quadlet bundle: one .container file per container of the
// app and per companion, the static pre-start files under files/, and a README.md. The result maps
// paths relative to the bundle's directory to contents.
func Bundle(app *manifest.Loaded, opts BundleOptions) (map[string][]byte, []Warning, error) {
	if opts.WantedBy == "" {
		opts.WantedBy = "multi-user.target"
	}
	out := map[string][]byte{}
	var warnings []Warning
	warn := func(format string, args ...any) {
		warnings = append(warnings, Warning{app.ID, fmt.Sprintf(format, args...)})
	}
	appData := opts.Roots.AppData(app.ID)
	dirs := map[string]bool{}
	var after []string
	for _, dep := range app.Requires.Apps {
		after = append(after, quadlet.ServiceFile(dep))
	}
	var units []string
	ctrs := appContainers(&app.App)
	for i, c := range ctrs {
		u := quadlet.Unit{ID: c.PodmanName, App: app.ID, Description: fmt.Sprintf("%s: %s (exported by lockstep)", app.Name, c.PodmanName),
			Image: c.image(), Entrypoint: c.Entrypoint, Exec: c.Command, Env: c.Env, Network: c.Network, User: c.User,
			ReadOnly: c.ReadOnly, WantedBy: opts.WantedBy, After: after,
			StopTimeout: seconds(c.StopGracePeriod.D()),
			Labels:      map[string]string{LabelExportedFrom: app.ID}}
		res, err := spec.Resolve(app, c.entry(), opts.Roots, nil)
		if err != nil {
			return nil, nil, err
		}
		u.Ports, u.Volumes, u.CapAdd, u.CapDrop = res.Ports, res.Binds(), res.CapAdd, res.CapDrop
		for _, v := range res.Volumes {
			dirs[v.Source] = true
		}
		if i > 0 { // a stack: each container after the one before it
			u.After = append(append([]string{}, after...), quadlet.ServiceFile(ctrs[i-1].PodmanName))
		}
		if h := c.Health; h != nil {
			u.Health = &quadlet.Health{Cmd: h.Command, Interval: h.Interval.D(), Timeout: h.Timeout.D(), StartPeriod: h.StartPeriod.D(), Retries: h.Retries}
		}
		if c.Build != nil {
			warn("container %s: image %s is built locally by lockstep: build it on the host or push it to a registry the host pulls from", c.Name, c.image())
		}
		if refersToValues(c) {
			warn("container %s: env or command refer to values lockstep resolves at run time (${APP.NAME}): written as is, set them by hand", c.Name)
		}
		if c.Restart != "" && c.Restart != "no" {
			warn("container %s: restart %q is left to systemd (Restart=always)", c.Name, c.Restart)
		}
		b, err := quadlet.RenderContainer(u)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", app.ID, err)
		}
		b = exportedHeader(b, app.ID)
		name := quadlet.ContainerFile(c.PodmanName)
		out[name] = b
		units = append(units, name)
	}
	for i, comp := range app.Companions {
		u, err := quadlet.CompanionUnit(app, i, opts.Roots, nil, opts.WantedBy)
		if err != nil {
			return nil, nil, err
		}
		u.After = []string{quadlet.ServiceFile(ctrs[len(ctrs)-1].PodmanName)}
		for _, v := range u.Volumes {
			dirs[v.Source] = true
		}
		b, err := quadlet.RenderContainer(u)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: companion %s: %w", app.ID, comp.ID, err)
		}
		b = exportedHeader(b, app.ID)
		name := quadlet.ContainerFile(comp.ID)
		out[name] = b
		units = append(units, name)
	}
	type file struct{ src, dst, mode, owner string }
	var files []file
	var notExported []string
	var chowns []string
	for _, h := range app.Hooks.PreStart {
		if h.Template == "" { // an ownership fix
			chowns = append(chowns, fmt.Sprintf("chown -R %s %s", h.Owner, path.Join(appData, h.Path)))
			continue
		}
		b, err := os.ReadFile(filepath.Join(app.Dir, h.Template))
		if err != nil {
			return nil, nil, fmt.Errorf("%s: pre-start hook %s: %w", app.ID, h.Template, err)
		}
		if bytes.Contains(b, []byte("{{")) {
			warn("pre-start hook %s -> %s is a template lockstep renders on the host: not exported", h.Template, h.Path)
			notExported = append(notExported, h.Template+" -> "+h.Path)
			continue
		}
		mode := h.Mode
		if mode == "" {
			mode = "0644"
		}
		src := path.Join("files", h.Path)
		out[src] = b
		files = append(files, file{src, path.Join(appData, h.Path), mode, h.Owner})
	}
	if isStack(&app.App) {
		warn("stack: lockstep runs its containers on the network lockstep-%s, where they know each other by their names (%s); the units use podman's default network and the podman names", app.ID, memberNames(ctrs))
	}
	if len(app.Requires.Apps) > 0 {
		warn("requires %s: the units start after theirs (After=), which only orders them when those bundles are on the same host", strings.Join(app.Requires.Apps, ", "))
	}
	if app.Requires.DiskGB > 0 {
		warn("requires %g GB free at the data dir: not checked by systemd", app.Requires.DiskGB)
	}

	var r bytes.Buffer
	fmt.Fprintf(&r, "# %s (%s %s): a Quadlet bundle exported by lockstepctl export\n\n", app.ID, app.Name, app.Version)
	if app.Description != "" {
		fmt.Fprintf(&r, "%s\n\n", app.Description)
	}
	r.WriteString("Units (Quadlet `.container` files; the generator of podman 4.4 or later makes `<name>.service` of each):\n\n")
	for _, u := range units {
		fmt.Fprintf(&r, "- `%s`\n", u)
	}
	fmt.Fprintf(&r, `
Install on a host (as root; for a user's systemd put the files in ~/.config/containers/systemd and
export with --wanted-by default.target):

    mkdir -p %s
`, strings.Join(sortedKeys(dirs), " "))
	for _, f := range files {
		fmt.Fprintf(&r, "    install -D -m %s %s %s\n", f.mode, f.src, f.dst)
		if f.owner != "" {
			fmt.Fprintf(&r, "    chown %s %s\n", f.owner, f.dst)
		}
	}
	for _, c := range chowns {
		fmt.Fprintf(&r, "    %s\n", c)
	}
	r.WriteString("    cp *.container /etc/containers/systemd/\n    systemctl daemon-reload\n")
	// In start order: the app's containers, then its companions.
	for _, u := range units {
		fmt.Fprintf(&r, "    systemctl start %s\n", strings.TrimSuffix(u, ".container")+".service")
	}
	r.WriteString(`
A fleet tool (flightctl, or any tool that ships Quadlet files) installs the same files. The data
directories must exist before the units start: podman does not create bind-mount sources.
`)
	if len(notExported) > 0 {
		fmt.Fprintf(&r, "\nNot exported: pre-start templates rendered by lockstep on the host: %s.\n", strings.Join(notExported, ", "))
	}
	if len(warnings) > 0 {
		r.WriteString("\nWarnings:\n\n")
		for _, w := range warnings {
			fmt.Fprintf(&r, "- %s\n", w.Message)
		}
	}
	r.WriteString(`
What lockstep did that these units do not: reachability probes and repair of dead ports, restart
backoff, health-driven restarts on podman 4.3, adoption of existing containers, dependency health
gates and restarts of dependents. See docs/scale-out.md in lockstep's sources.
`)
	out["README.md"] = r.Bytes()
	return out, warnings, nil
}

func memberNames(ctrs []namedContainer) string {
	var names []string
	for _, c := range ctrs {
		names = append(names, c.Name)
	}
	return strings.Join(names, ", ")
}

// refersToValues tells whether a container's env or command use ${APP.NAME} references.
func refersToValues(c namedContainer) bool {
	for _, v := range c.Env {
		if strings.Contains(v, "${") {
			return true
		}
	}
	for _, w := range append(append([]string{}, c.Entrypoint...), c.Command...) {
		if strings.Contains(w, "${") {
			return true
		}
	}
	return false
}

// ExportedHeader is the first line of an exported unit. It is not quadlet.Header on purpose: a
// lockstepd on the same host deletes lockstep-*.container files that carry its header and that it
// does not expect.
const ExportedHeader = "# Exported by lockstepctl export (app %s); lockstep does not manage this file.\n"

func exportedHeader(b []byte, app string) []byte {
	return append([]byte(fmt.Sprintf(ExportedHeader, app)), bytes.TrimPrefix(b, []byte(quadlet.Header))...)
}
