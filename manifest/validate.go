package manifest

import (
	"fmt"
	"github.com/lockstep/lockstep/internal/ctlchar"
	"net"
	"path"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"go.podman.io/image/v5/docker/reference"

	"github.com/lockstep/lockstep/policy"
)

// AppDataVar stands, at the start of a volume source, for the app's own data directory.
const AppDataVar = "${APP_DATA}"

var (
	idRE      = regexp.MustCompile(`^[a-z0-9][a-z0-9-]*$`)
	envKeyRE  = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	netNameRE = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`)
	capRE     = regexp.MustCompile(`^(CAP_)?[A-Z][A-Z_]*$`)
	userRE    = regexp.MustCompile(`^[a-zA-Z0-9_][a-zA-Z0-9_.-]*(:[a-zA-Z0-9_][a-zA-Z0-9_.-]*)?$`)
	hostRE    = regexp.MustCompile(`^[a-zA-Z0-9]([a-zA-Z0-9.-]*[a-zA-Z0-9])?(:[0-9]{1,5})?$`)
)

// RestartPolicies are the accepted values of container.restart.
var RestartPolicies = []string{"no", "always", "on-failure", "unless-stopped"}

// ReservedCompanionIDs are the companion ids whose unit (lockstep-ID.service) would be one of
// lockstep's own units (lockstep-reconcile.service and .timer, system and user).
var ReservedCompanionIDs = map[string]bool{"reconcile": true}

// Roots is what the load path holds manifests to besides their own content: DataRoot/<id> is
// ${APP_DATA}, the app's own data dir; Extra are lockstepd's --volume-root dirs, which every app's
// volume sources may lie in; Policy is the operator's policy (nil: the empty policy, which grants
// nothing); NetworkPrefix starts lockstep's app networks (lockstepd's --network-prefix; default
// "lockstep-").
type Roots struct {
	DataRoot      string
	Extra         []string
	Policy        *policy.Policy
	NetworkPrefix string
}

// AppData returns the data directory of app id.
func (r Roots) AppData(id string) string { return path.Join(r.DataRoot, id) }

// Port is a parsed port mapping.
type Port struct {
	HostIP        string
	HostPort      uint16 // 0: not published on the host
	ContainerPort uint16
	Protocol      string // tcp or udp
}

func (p Port) String() string {
	if p.HostPort == 0 {
		return fmt.Sprintf("%d/%s", p.ContainerPort, p.Protocol)
	}
	if p.HostIP == "" {
		return fmt.Sprintf("%d:%d/%s", p.HostPort, p.ContainerPort, p.Protocol)
	}
	return fmt.Sprintf("%s:%d:%d/%s", p.HostIP, p.HostPort, p.ContainerPort, p.Protocol)
}

// ParsePort parses "[ip:]host:container[/proto]" or "container[/proto]".
func ParsePort(s string) (Port, error) {
	p := Port{Protocol: "tcp"}
	if i := strings.LastIndex(s, "/"); i >= 0 {
		p.Protocol = s[i+1:]
		s = s[:i]
		if p.Protocol != "tcp" && p.Protocol != "udp" {
			return p, fmt.Errorf("protocol %q is not tcp or udp", p.Protocol)
		}
	}
	var ip, host, ctr string
	if strings.HasPrefix(s, "[") { // [::1]:80:80
		end := strings.Index(s, "]")
		if end < 0 {
			return p, fmt.Errorf("unclosed [ in IPv6 address")
		}
		ip, s = s[1:end], strings.TrimPrefix(s[end+1:], ":")
		parts := strings.Split(s, ":")
		if len(parts) != 2 {
			return p, fmt.Errorf("want [IP]:HOST:CONTAINER")
		}
		host, ctr = parts[0], parts[1]
	} else {
		parts := strings.Split(s, ":")
		switch len(parts) {
		case 1:
			ctr = parts[0]
		case 2:
			host, ctr = parts[0], parts[1]
		case 3:
			ip, host, ctr = parts[0], parts[1], parts[2]
		default:
			return p, fmt.Errorf("want [IP:]HOST:CONTAINER[/PROTO]")
		}
	}
	if ip != "" {
		addr := net.ParseIP(ip)
		if addr == nil {
			return p, fmt.Errorf("host address %q is not an IP address", ip)
		}
		p.HostIP = addr.String()
	}
	num := func(what, v string) (uint16, error) {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 65535 {
			return 0, fmt.Errorf("%s port %q is not a number from 1 to 65535", what, v)
		}
		return uint16(n), nil
	}
	var err error
	if p.ContainerPort, err = num("container", ctr); err != nil {
		return p, err
	}
	if host != "" || len(strings.Split(s, ":")) > 1 {
		if p.HostPort, err = num("host", host); err != nil {
			return p, err
		}
	}
	return p, nil
}

// Volume is a parsed bind mount.
type Volume struct {
	Source, Target string
	Options        []string
}

// ReadOnly tells whether the mount is read-only.
func (v Volume) ReadOnly() bool {
	for _, o := range v.Options {
		if o == "ro" {
			return true
		}
	}
	return false
}

var volumeOptions = map[string]bool{"ro": true, "rw": true, "z": true, "Z": true, "U": true}

// ParseVolume parses "SOURCE:TARGET[:OPTS]" and expands ${APP_DATA} to appData.
func ParseVolume(s, appData string) (Volume, error) {
	parts := strings.Split(s, ":")
	if len(parts) < 2 || len(parts) > 3 {
		return Volume{}, fmt.Errorf("want SOURCE:TARGET[:OPTIONS]")
	}
	v := Volume{Source: parts[0], Target: parts[1]}
	if len(parts) == 3 {
		for _, o := range strings.Split(parts[2], ",") {
			if !volumeOptions[o] {
				return v, fmt.Errorf("unknown volume option %q (known: ro, rw, z, Z, U)", o)
			}
			v.Options = append(v.Options, o)
		}
	}
	if rest, ok := strings.CutPrefix(v.Source, AppDataVar); ok {
		if rest != "" && !strings.HasPrefix(rest, "/") {
			return v, fmt.Errorf("%s must be followed by / or nothing", AppDataVar)
		}
		v.Source = appData + rest
	}
	if !path.IsAbs(v.Source) {
		return v, fmt.Errorf("source %q is not an absolute path or %s/...; named and relative volumes are not supported", parts[0], AppDataVar)
	}
	for _, el := range strings.Split(v.Source, "/") {
		if el == ".." {
			return v, fmt.Errorf("source %q contains ..", parts[0])
		}
	}
	v.Source = path.Clean(v.Source)
	if !path.IsAbs(v.Target) {
		return v, fmt.Errorf("target %q is not an absolute path", v.Target)
	}
	v.Target = path.Clean(v.Target)
	return v, nil
}

func within(p, root string) bool {
	root = path.Clean(root)
	return p == root || strings.HasPrefix(p, strings.TrimSuffix(root, "/")+"/")
}

// checkImage validates an image reference.
func checkImage(ref string) error {
	if ref == "" {
		return fmt.Errorf("empty image reference")
	}
	if ref != strings.TrimSpace(ref) {
		return fmt.Errorf("image reference %q has surrounding spaces", ref)
	}
	if _, err := reference.ParseNormalizedNamed(ref); err != nil {
		return fmt.Errorf("invalid image reference %q: %v", ref, err)
	}
	return nil
}

// Validate checks one app's values. dir is the manifest's directory (for build contexts and templates).
func Validate(file string, a *App, roots Roots) Problems {
	var ps Problems
	bad := func(field, format string, args ...any) {
		ps = append(ps, Problem{file, field, fmt.Sprintf(format, args...)})
	}
	ctlchar.Walk(reflect.ValueOf(a).Elem(), "app", func(field string) {
		bad(field, "contains a newline, NUL or other control character")
	})
	switch {
	case a.ID == "":
		bad("app.id", "missing")
	case !idRE.MatchString(a.ID) || len(a.ID) > 63:
		bad("app.id", "%q is not a valid id (lowercase letters, digits and -, starting with a letter or digit, at most 63)", a.ID)
	}
	if strings.TrimSpace(a.Name) == "" {
		bad("app.name", "missing")
	}
	if strings.TrimSpace(a.Version) == "" {
		bad("app.version", "missing")
	}
	if len(a.Containers) > 0 {
		if !reflect.DeepEqual(a.Container, Container{}) {
			bad("app.container", "set either app.container (one container) or app.containers (a stack), not both")
		}
		if a.Health != nil {
			bad("app.health", "a stack's containers each declare their own health (app.containers[i].health)")
		}
	} else if a.Health != nil && a.Container.Health != nil {
		bad("app.container.health", "app.health is already set; declare the health check once")
	}
	names := map[string]int{}
	for i, m := range a.Members() {
		f := m.Field
		if len(a.Containers) == 0 {
			if m.Name != "" {
				bad(f+".name", "only a stack's containers (app.containers) are named; this one is named %s", a.ID)
			}
		} else {
			switch j, dup := names[m.Name]; {
			case m.Name == "":
				bad(f+".name", "missing: a stack's containers are named (db, api, web)")
			case !idRE.MatchString(m.Name) || len(a.ID)+1+len(m.Name) > 63:
				bad(f+".name", "%q is not a valid name (lowercase letters, digits and -; app id + name at most 62)", m.Name)
			case dup:
				bad(f+".name", "%q is already the name of app.containers[%d]", m.Name, j)
			}
			names[m.Name] = i
		}
		validateContainer(f, m.Container, a, roots, bad)
		if h := m.Health; h != nil {
			hf := "app.health"
			if a.Health == nil {
				hf = f + ".health"
			}
			if len(h.Command) == 0 {
				bad(hf+".command", "missing: a health check needs a command")
			}
			if h.Retries < 0 {
				bad(hf+".retries", "must not be negative")
			}
			if h.Interval != 0 && h.Interval.D().Seconds() < 1 {
				bad(hf+".interval", "must be at least 1s")
			}
		}
	}
	if a.Requires.DiskGB < 0 {
		bad("app.requires.disk_gb", "must not be negative")
	}
	deps := map[string]bool{a.ID: true}
	for _, list := range []struct {
		field string
		ids   []string
	}{{"app.requires.apps", a.Requires.Apps}, {"app.requires.optional", a.Requires.Optional}, {"app.provides", a.Provides}} {
		for i, dep := range list.ids {
			f := fmt.Sprintf("%s[%d]", list.field, i)
			switch {
			case dep == a.ID && list.field == "app.provides":
				bad(f, "an app is itself already; provides names other capabilities")
			case dep == a.ID:
				bad(f, "an app cannot require itself")
			case !idRE.MatchString(dep):
				bad(f, "%q is not a valid app id or capability", dep)
			case deps[dep] && list.field != "app.provides":
				bad(f, "%q is named twice in requires", dep)
			}
			if list.field != "app.provides" {
				deps[dep] = true
			}
		}
	}
	for _, k := range sortedKeys(a.Exports) {
		e, f := a.Exports[k], "app.exports."+k
		if !exportRE.MatchString(k) {
			bad(f, "%q is not a valid export name (lowercase letters, digits and _, starting with a letter)", k)
		}
		n := 0
		for _, set := range []bool{e.Value != "", e.Host != "", e.Secret} {
			if set {
				n++
			}
		}
		if n != 1 {
			bad(f, "set exactly one of value, host and secret")
		}
		if e.Shared && !e.Secret {
			bad(f+".shared", "only a secret export is shared or not; value and host exports are always visible to dependents")
		}
		if e.Host != "" && a.member(e.Host) == nil {
			bad(f+".host", "%q is not a container of this app (%s)", e.Host, strings.Join(a.memberNames(), ", "))
		}
	}
	for _, m := range a.Members() {
		checkRefs(m.Field+".env", m.Env, nil, a, deps, bad)
		checkRefs(m.Field+".command", nil, m.Command, a, deps, bad)
		for i, dm := range m.Mounts {
			f := fmt.Sprintf("%s.mounts[%d]", m.Field, i)
			if dm.From == a.ID || !deps[dm.From] {
				bad(f+".from", "%q is not a dependency named in requires", dm.From)
			}
			if dm.Path == "" || path.IsAbs(dm.Path) || hasDotDot(dm.Path) {
				bad(f+".path", "%q must be a path relative to the dependency's data directory, without ..", dm.Path)
			}
			if !path.IsAbs(dm.Target) {
				bad(f+".target", "%q is not an absolute path", dm.Target)
			}
		}
	}
	for i, sp := range a.SharedPaths {
		if sp == "" || path.IsAbs(sp) || hasDotDot(sp) {
			bad(fmt.Sprintf("app.shared_paths[%d]", i), "%q must be a path relative to the app's data directory, without ..", sp)
		}
	}
	hookNames := map[string]int{}
	for i, h := range a.Hooks.PreStart {
		f := fmt.Sprintf("app.hooks.pre_start[%d]", i)
		if h.Template == "" && h.Owner == "" {
			bad(f, "set template (render a file) or owner (fix ownership of path)")
		}
		if h.Template != "" && (path.IsAbs(h.Template) || hasDotDot(h.Template)) {
			bad(f+".template", "%q must be a file path relative to the manifest's directory", h.Template)
		}
		if h.Path == "" || path.IsAbs(h.Path) || hasDotDot(h.Path) {
			bad(f+".path", "%q must be a path relative to the app's data directory", h.Path)
		} else if h.Template != "" && path.Clean(h.Path) == "." {
			bad(f+".path", "%q is the data directory itself: a template's path names a file in it", h.Path)
		}
		if h.Mode != "" {
			if m, err := strconv.ParseUint(h.Mode, 8, 32); err != nil || m > 0o777 {
				bad(f+".mode", "%q is not an octal file mode such as 0640", h.Mode)
			}
		}
		if h.Owner != "" && !ownerRE.MatchString(h.Owner) {
			bad(f+".owner", "%q is not UID:GID (numbers)", h.Owner)
		}
		for j, c := range h.Containers {
			if a.member(c) == nil {
				bad(fmt.Sprintf("%s.containers[%d]", f, j), "%q is not a container of this app (%s)", c, strings.Join(a.memberNames(), ", "))
			}
		}
		if j, dup := hookNames[h.HookName()]; dup {
			bad(f+".name", "%q is already the name of app.hooks.pre_start[%d]", h.HookName(), j)
		}
		hookNames[h.HookName()] = i
	}
	seen := map[string]bool{}
	for i, comp := range a.Companions {
		f := fmt.Sprintf("app.companions[%d]", i)
		switch {
		case comp.ID == "":
			bad(f+".id", "missing")
		case !idRE.MatchString(comp.ID) || len(comp.ID) > 63:
			bad(f+".id", "%q is not a valid id", comp.ID)
		case comp.ID == a.ID || seen[comp.ID]:
			bad(f+".id", "%q is used twice in this app", comp.ID)
		case ReservedCompanionIDs[comp.ID]:
			bad(f+".id", "%q is reserved: its unit lockstep-%s.service is one of lockstep's own", comp.ID, comp.ID)
		}
		seen[comp.ID] = true
		if err := checkImage(comp.Image); err != nil {
			bad(f+".image", "%v", err)
		}
		checkEnv(f+".env", comp.Env, bad)
		checkPorts(f+".ports", comp.Ports, bad)
		checkProbes(f+".probes", comp.Probes, comp.Ports, bad)
		checkVolumes(f+".volumes", comp.Volumes, roots, a.ID, bad)
		checkNetwork(f+".network", comp.Network, bad)
		checkCaps(f+".capabilities", comp.Capabilities, bad)
		for j, dm := range comp.Mounts {
			mf := fmt.Sprintf("%s.mounts[%d]", f, j)
			if !deps[dm.From] {
				bad(mf+".from", "%q is neither this app nor a dependency named in requires", dm.From)
			}
			if dm.Path == "" || path.IsAbs(dm.Path) || hasDotDot(dm.Path) {
				bad(mf+".path", "%q must be a path relative to the app's data directory, without ..", dm.Path)
			}
			if !path.IsAbs(dm.Target) {
				bad(mf+".target", "%q is not an absolute path", dm.Target)
			}
		}
		if comp.User != "" && !userRE.MatchString(comp.User) {
			bad(f+".user", "%q is not USER or USER:GROUP", comp.User)
		}
	}
	for i, r := range a.Registry.Insecure {
		if !hostRE.MatchString(r) {
			bad(fmt.Sprintf("app.registry.insecure[%d]", i), "%q is not HOST or HOST:PORT", r)
		}
	}
	return ps
}

type badFunc func(field, format string, args ...any)

var (
	exportRE = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)
	ownerRE  = regexp.MustCompile(`^[0-9]+:[0-9]+$`)
	// refRE matches ${APP.NAME}: an export of a dependency (or of the app itself).
	refRE = regexp.MustCompile(`\$\{([a-z0-9][a-z0-9-]*)\.([a-z][a-z0-9_]*)\}`)
)

// Refs returns the ${APP.NAME} references in s as [app, name] pairs ($${ is a literal ${).
func Refs(s string) [][2]string {
	var out [][2]string
	for _, piece := range strings.Split(s, "$${") {
		for _, m := range refRE.FindAllStringSubmatch(piece, -1) {
			out = append(out, [2]string{m[1], m[2]})
		}
	}
	return out
}

// Expand replaces every ${APP.NAME} in s by value(APP, NAME), and $${ by a literal ${.
func Expand(s string, value func(app, name string) string) string {
	if !strings.Contains(s, "${") {
		return s
	}
	pieces := strings.Split(s, "$${")
	for i, piece := range pieces {
		pieces[i] = refRE.ReplaceAllStringFunc(piece, func(m string) string {
			sub := refRE.FindStringSubmatch(m)
			return value(sub[1], sub[2])
		})
	}
	return strings.Join(pieces, "${")
}

// notRef returns the first ${ in s that starts no ${APP.NAME} reference and is not written $${, up
// to its closing brace ("" if none).
func notRef(s string) string {
	for _, piece := range strings.Split(s, "$${") {
		for i := strings.Index(piece, "${"); i >= 0; i = strings.Index(piece, "${") {
			if loc := refRE.FindStringIndex(piece[i:]); loc == nil || loc[0] != 0 {
				if j := strings.Index(piece[i:], "}"); j >= 0 {
					return piece[i : i+j+1]
				}
				return piece[i:]
			}
			piece = piece[i+2:]
		}
	}
	return ""
}

func hasDotDot(p string) bool {
	for _, el := range strings.Split(p, "/") {
		if el == ".." {
			return true
		}
	}
	return false
}

// checkRefs checks that the ${APP.NAME} references in env values or command words name the app's own
// exports or its dependencies (whose exports are checked against the installed set by LoadDir).
func checkRefs(field string, env map[string]string, words []string, a *App, deps map[string]bool, bad badFunc) {
	check := func(f, s string) {
		if x := notRef(s); x != "" {
			bad(f, "%q is not a reference lockstep expands (${APP.NAME}; ${APP_DATA} only in volumes): write $%s to give the container a literal %s", x, x, x)
		}
		for _, r := range Refs(s) {
			switch {
			case r[0] == a.ID:
				if _, ok := a.Exports[r[1]]; !ok {
					bad(f, "${%s.%s}: this app exports no %s", r[0], r[1], r[1])
				}
			case !deps[r[0]]:
				bad(f, "${%s.%s}: %s is not named in requires.apps or requires.optional", r[0], r[1], r[0])
			}
		}
	}
	for _, k := range sortedKeys(env) {
		check(field+"."+k, env[k])
	}
	for i, w := range words {
		check(fmt.Sprintf("%s[%d]", field, i), w)
	}
}

// member returns the container with the given name ("" or the app id for a one-container app).
func (a *App) member(name string) *Container {
	if len(a.Containers) == 0 {
		if name == "" || name == a.ID {
			return &a.Container
		}
		return nil
	}
	for i := range a.Containers {
		if a.Containers[i].Name == name {
			return &a.Containers[i]
		}
	}
	return nil
}

func (a *App) memberNames() []string {
	if len(a.Containers) == 0 {
		return []string{a.ID}
	}
	var out []string
	for _, c := range a.Containers {
		out = append(out, c.Name)
	}
	return out
}

// validateContainer checks one container's values; f is its field path.
func validateContainer(f string, c *Container, a *App, roots Roots, bad badFunc) {
	switch {
	case c.Build != nil:
		if c.Build.Context == "" {
			bad(f+".build.context", "missing")
		} else if strings.Contains(c.Build.Context, "..") {
			bad(f+".build.context", "%q must not contain ..", c.Build.Context)
		} else if path.IsAbs(c.Build.Context) {
			bad(f+".build.context", "%q must be a directory relative to the manifest's directory, not an absolute path", c.Build.Context)
		}
		if c.Build.Containerfile != "" && (path.IsAbs(c.Build.Containerfile) || strings.Contains(c.Build.Containerfile, "..")) {
			bad(f+".build.containerfile", "%q must be a path inside the build context", c.Build.Containerfile)
		}
		if c.Build.Tag == "" {
			bad(f+".build.tag", "missing: a build names the image it produces")
		} else if err := checkImage(c.Build.Tag); err != nil {
			bad(f+".build.tag", "%v", err)
		}
		if c.Image != "" && c.Image != c.Build.Tag {
			bad(f+".image", "%q differs from build.tag %q; with a build, leave image empty or equal to the tag", c.Image, c.Build.Tag)
		}
	case c.Image == "":
		bad(f+".image", "missing: set image or build")
	default:
		if err := checkImage(c.Image); err != nil {
			bad(f+".image", "%v", err)
		}
	}
	checkEnv(f+".env", c.Env, bad)
	checkPorts(f+".ports", c.Ports, bad)
	checkProbes(f+".probes", c.Probes, c.Ports, bad)
	checkVolumes(f+".volumes", c.Volumes, roots, a.ID, bad)
	checkNetwork(f+".network", c.Network, bad)
	checkCaps(f+".capabilities", c.Capabilities, bad)
	if c.User != "" && !userRE.MatchString(c.User) {
		bad(f+".user", "%q is not USER or USER:GROUP", c.User)
	}
	if c.Restart != "" && !contains(RestartPolicies, c.Restart) {
		bad(f+".restart", "%q is not one of %s", c.Restart, strings.Join(RestartPolicies, ", "))
	}
}

func checkEnv(field string, env map[string]string, bad badFunc) {
	for _, k := range sortedKeys(env) {
		if !envKeyRE.MatchString(k) {
			bad(field+"."+k, "%q is not a valid variable name", k)
		}
	}
}

func checkPorts(field string, ports []string, bad badFunc) {
	seen := map[string]int{}
	for i, s := range ports {
		p, err := ParsePort(s)
		if err != nil {
			bad(fmt.Sprintf("%s[%d]", field, i), "%q: %v", s, err)
			continue
		}
		if p.HostPort == 0 {
			continue
		}
		key := fmt.Sprintf("%d/%s", p.HostPort, p.Protocol)
		if j, ok := seen[key]; ok {
			bad(fmt.Sprintf("%s[%d]", field, i), "host port %s is already published by %s[%d]", key, field, j)
		}
		seen[key] = i
	}
}

func checkVolumes(field string, vols []string, roots Roots, id string, bad badFunc) {
	for i, s := range vols {
		// Where a source may lie is the operator's policy's (CheckPolicy).
		if _, err := ParseVolume(s, roots.AppData(id)); err != nil {
			bad(fmt.Sprintf("%s[%d]", field, i), "%q: %v", s, err)
		}
	}
}

func checkNetwork(field, n string, bad badFunc) {
	if n != "" && !netNameRE.MatchString(n) {
		bad(field, "%q is not bridge, host, none or a network name", n)
	}
}

func checkCaps(field string, c Capabilities, bad badFunc) {
	for i, s := range c.Add {
		if s != "ALL" && !capRE.MatchString(s) {
			bad(fmt.Sprintf("%s.add[%d]", field, i), "%q is not a capability name such as NET_BIND_SERVICE", s)
		}
	}
	for i, s := range c.Drop {
		if s != "ALL" && !capRE.MatchString(s) {
			bad(fmt.Sprintf("%s.drop[%d]", field, i), "%q is not a capability name such as NET_RAW", s)
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
