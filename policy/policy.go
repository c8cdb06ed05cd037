package policy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// DefaultFile is where lockstepd and lockstepctl read the policy unless told otherwise (--policy).
const DefaultFile = "/etc/lockstep/policy.yaml"

// maxFileSize bounds the policy file, as manifests are bounded.
const maxFileSize = 1 << 20

// Policy is the operator's policy. The zero value (and nil) grants nothing.
type Policy struct {
	// File is where the policy was read from (DefaultFile when none was), for the messages that name
	// the key allowing what was refused.
	File string `yaml:"-"`
	// AllApps grants something to every app.
	AllApps Grants `yaml:"all_apps"`
	// Apps grants something to one app, by id; its companions have the same grants.
	Apps map[string]Grants `yaml:"apps"`
}

// Grants are what the policy allows beyond the defaults.
type Grants struct {
	// Capabilities an app's containers may add (NET_BIND_SERVICE, ...); ALL grants every one.
	Capabilities []string `yaml:"capabilities"`
	// HostNetwork allows network: host.
	HostNetwork bool `yaml:"host_network"`
	// RootUser allows user 0 (or root) in the container.
	RootUser bool `yaml:"root_user"`
	// Networks are further podman networks the app's containers may name in network:.
	Networks []string `yaml:"networks"`
	// VolumeRoots are host directories, outside the app's own data dir, that volume sources may lie in.
	VolumeRoots []string `yaml:"volume_roots"`
	// RelabelRoots are host directories, outside the app's own data dir, whose sources may carry the
	// z, Z (SELinux relabel) and U (chown to the container's user) options.
	RelabelRoots []string `yaml:"relabel_roots"`
}

var (
	idRE  = regexp.MustCompile(`^[a-z0-9][a-z0-9-]*$`)
	capRE = regexp.MustCompile(`^(CAP_)?[A-Z][A-Z_]*$`)
	netRE = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`)
)

// Load reads the policy at file. A missing file is the empty policy (nothing granted); an unreadable
// or invalid one is an error FILE: FIELD: REASON, on which lockstepd refuses to start.
func Load(file string) (*Policy, error) {
	f, err := os.Open(file)
	if errors.Is(err, fs.ErrNotExist) {
		return &Policy{File: file}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%s: -: cannot read: %w", file, unwrap(err))
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("%s: -: cannot read: %w", file, unwrap(err))
	}
	if len(data) > maxFileSize {
		return nil, fmt.Errorf("%s: -: file is larger than %d bytes", file, maxFileSize)
	}
	return Parse(file, data)
}

func unwrap(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// Parse decodes and checks a policy strictly: an unknown key, a wrong type, an invalid app id,
// capability, network or root is an error naming the file and the field.
func Parse(file string, data []byte) (*Policy, error) {
	p := &Policy{File: file}
	if len(bytes.TrimSpace(data)) == 0 {
		return p, nil
	}
	if bytes.IndexByte(data, 0) >= 0 {
		return nil, fmt.Errorf("%s: -: file contains NUL bytes", file)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(p); err != nil && !errors.Is(err, io.EOF) {
		msg := strings.TrimPrefix(strings.TrimPrefix(err.Error(), "yaml: "), "unmarshal errors:\n")
		var lines []string
		for _, l := range strings.Split(msg, "\n") {
			lines = append(lines, strings.TrimSpace(l))
		}
		return nil, fmt.Errorf("%s: -: %s", file, strings.Join(lines, "; "))
	}
	p.File = file
	var errs []string
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Sprintf("%s: %s: %s", file, field, fmt.Sprintf(format, args...)))
	}
	p.AllApps.check("all_apps", bad)
	ids := make([]string, 0, len(p.Apps))
	for id := range p.Apps {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		if !idRE.MatchString(id) || len(id) > 63 {
			bad("apps."+id, "%q is not an app id", id)
			continue
		}
		g := p.Apps[id]
		g.check("apps."+id, bad)
	}
	if len(errs) > 0 {
		return nil, errors.New(strings.Join(errs, "\n"))
	}
	return p, nil
}

func (g *Grants) check(field string, bad func(field, format string, args ...any)) {
	for i, c := range g.Capabilities {
		if c != "ALL" && !capRE.MatchString(c) {
			bad(fmt.Sprintf("%s.capabilities[%d]", field, i), "%q is not a capability name such as NET_BIND_SERVICE", c)
		}
	}
	for i, n := range g.Networks {
		if !netRE.MatchString(n) {
			bad(fmt.Sprintf("%s.networks[%d]", field, i), "%q is not a network name", n)
		}
	}
	for _, list := range []struct {
		key   string
		roots []string
	}{{"volume_roots", g.VolumeRoots}, {"relabel_roots", g.RelabelRoots}} {
		for i, r := range list.roots {
			if !path.IsAbs(r) || slices.Contains(strings.Split(r, "/"), "..") {
				bad(fmt.Sprintf("%s.%s[%d]", field, list.key, i), "%q is not an absolute path without ..", r)
			}
		}
	}
}

// Digest identifies the policy's content, for caches of what was checked against it.
func (p *Policy) Digest() string {
	if p == nil {
		return ""
	}
	var b strings.Builder
	b.WriteString(p.File)
	write := func(id string, g Grants) {
		fmt.Fprintf(&b, "\x00%s\x00%q %t %t %q %q %q", id, g.Capabilities, g.HostNetwork, g.RootUser, g.Networks, g.VolumeRoots, g.RelabelRoots)
	}
	write("", p.AllApps)
	ids := make([]string, 0, len(p.Apps))
	for id := range p.Apps {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		write(id, p.Apps[id])
	}
	return b.String()
}

func (p *Policy) file() string {
	if p == nil || p.File == "" {
		return DefaultFile
	}
	return p.File
}

// grants is what app id is granted: all_apps and apps.ID together.
func (p *Policy) grants(id string) Grants {
	if p == nil {
		return Grants{}
	}
	g, own := p.AllApps, p.Apps[id]
	return Grants{
		Capabilities: append(append([]string(nil), g.Capabilities...), own.Capabilities...),
		HostNetwork:  g.HostNetwork || own.HostNetwork,
		RootUser:     g.RootUser || own.RootUser,
		Networks:     append(append([]string(nil), g.Networks...), own.Networks...),
		VolumeRoots:  append(append([]string(nil), g.VolumeRoots...), own.VolumeRoots...),
		RelabelRoots: append(append([]string(nil), g.RelabelRoots...), own.RelabelRoots...),
	}
}

// VolumeRoots are the roots outside its data dir that app id's volume sources may lie in.
func (p *Policy) VolumeRoots(id string) []string { return p.grants(id).VolumeRoots }

// Entry is what one container of an app (its container, a stack member, a companion) asks of the host.
type Entry struct {
	// App is the app's id; Field the entry's manifest path (app.container, app.companions[0]).
	App, Field string
	// DataDir is the app's own data dir (DATA-ROOT/ID); ExtraRoots lockstepd's --volume-root dirs,
	// granted to every app for volume sources.
	DataDir    string
	ExtraRoots []string
	// NetworkPrefix starts lockstep's app networks (lockstepd's --network-prefix).
	NetworkPrefix string
	// Deps are the dependency names the manifest requires (required and optional), as written.
	Deps    []string
	CapAdd  []string
	Network string
	User    string
	Volumes []Volume
}

// Volume is one bind mount of an entry: its source with ${APP_DATA} expanded, and its options.
type Volume struct {
	Field   string
	Source  string
	Options []string
}

// Refusal is one thing the policy refuses: the manifest field and the reason, which names the key
// that would allow it.
type Refusal struct {
	Field, Reason string
}

// DefaultCapabilities is podman's default capability set (containers.conf default_capabilities): a
// manifest that drops ALL may add these back without a grant, since a container has them anyway
// unless it drops them.
var DefaultCapabilities = []string{"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
	"CAP_NET_BIND_SERVICE", "CAP_SETFCAP", "CAP_SETGID", "CAP_SETPCAP", "CAP_SETUID", "CAP_SYS_CHROOT"}

// allowMarker starts the part of every refusal's reason that names the key allowing it.
const allowMarker = "to allow it: apps."

// Refused tells whether a problem's reason is a refusal of the policy (for lockstepctl validate's
// verdict).
func Refused(reason string) bool { return strings.Contains(reason, allowMarker) }

// Check returns what the policy refuses of e, in field order.
func (p *Policy) Check(e Entry) []Refusal {
	g := p.grants(e.App)
	var out []Refusal
	allow := func(key string) string {
		return fmt.Sprintf("%s%s.%s in %s", allowMarker, e.App, key, p.file())
	}
	for i, c := range e.CapAdd {
		name := normCap(c)
		if !slices.Contains(DefaultCapabilities, name) && !slices.ContainsFunc(g.Capabilities, func(x string) bool { x = normCap(x); return x == name || x == "ALL" }) {
			out = append(out, Refusal{fmt.Sprintf("%s.capabilities.add[%d]", e.Field, i),
				fmt.Sprintf("adding capability %s is not granted to app %s (%s)", name, e.App, allow("capabilities"))})
		}
	}
	if r := checkNetwork(e, g, allow); r != "" {
		out = append(out, Refusal{e.Field + ".network", r})
	}
	if e.User != "" && isRoot(e.User) && !g.RootUser {
		out = append(out, Refusal{e.Field + ".user", fmt.Sprintf("%q runs as root (user 0) in the container, which is not granted to app %s (%s)", e.User, e.App, allow("root_user: true"))})
	}
	for _, v := range e.Volumes {
		own := within(v.Source, e.DataDir)
		if !own && !withinAny(v.Source, e.ExtraRoots) && !withinAny(v.Source, g.VolumeRoots) {
			out = append(out, Refusal{v.Field, fmt.Sprintf("source %s is outside app %s's data dir %s and every root granted to it (%s, or lockstepd's --volume-root)", v.Source, e.App, e.DataDir, allow("volume_roots"))})
			continue
		}
		if own || withinAny(v.Source, g.RelabelRoots) {
			continue
		}
		for _, o := range v.Options {
			if o == "z" || o == "Z" || o == "U" {
				what := "relabels (SELinux)"
				if o == "U" {
					what = "chowns to the container's user"
				}
				out = append(out, Refusal{v.Field, fmt.Sprintf("option %s %s the source %s, outside app %s's data dir %s (%s)", o, what, v.Source, e.App, e.DataDir, allow("relabel_roots"))})
				break
			}
		}
	}
	return out
}

func checkNetwork(e Entry, g Grants, allow func(string) string) string {
	n := e.Network
	switch {
	case n == "" || n == "none" || n == "bridge":
		return ""
	case n == "host":
		if g.HostNetwork {
			return ""
		}
		return fmt.Sprintf("the host's network is not granted to app %s (%s)", e.App, allow("host_network: true"))
	case slices.Contains(g.Networks, n):
		return ""
	}
	prefix := e.NetworkPrefix
	if prefix == "" {
		prefix = "lockstep-"
	}
	if n == prefix+e.App || n == prefix+e.App+"_exports" {
		return ""
	}
	for _, d := range e.Deps {
		if n == prefix+d+"_exports" {
			return ""
		}
	}
	if rest, ok := strings.CutPrefix(n, prefix); ok {
		return fmt.Sprintf("%q is lockstep's network of app %s, which app %s may not join: an app joins its own network and its dependencies' exports networks (leave network unset), or the networks granted to it (%s)",
			n, strings.TrimSuffix(rest, "_exports"), e.App, allow("networks"))
	}
	return fmt.Sprintf("network %q is not granted to app %s (%s; bridge and none need no grant)", n, e.App, allow("networks"))
}

// isRoot tells whether USER[:GROUP] names user 0.
func isRoot(user string) bool {
	u, _, _ := strings.Cut(user, ":")
	if u == "root" {
		return true
	}
	n, err := strconv.ParseUint(u, 10, 64)
	return err == nil && n == 0
}

func normCap(c string) string {
	c = strings.ToUpper(c)
	if c != "ALL" && !strings.HasPrefix(c, "CAP_") {
		c = "CAP_" + c
	}
	return c
}

func within(p, root string) bool {
	if root == "" {
		return false
	}
	root = path.Clean(root)
	p = path.Clean(p)
	return p == root || root == "/" || strings.HasPrefix(p, root+"/")
}

func withinAny(p string, roots []string) bool {
	return slices.ContainsFunc(roots, func(r string) bool { return within(p, r) })
}

// Shares tells whether p, a path relative to a provider's data dir, is one of the paths it shares
// (its shared_paths) or under one: the provider's opt-in for the mounts of its dependents.
func Shares(shared []string, p string) bool {
	p = path.Clean(p)
	for _, s := range shared {
		if s = path.Clean(s); s == "." || p == s || strings.HasPrefix(p, s+"/") {
			return true
		}
	}
	return false
}
