package manifest

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/lockstep/lockstep/internal/graph"
	"github.com/lockstep/lockstep/internal/portclash"
	"github.com/lockstep/lockstep/internal/tmplref"
)

// Loaded is a valid manifest and where it came from.
type Loaded struct {
	App
	// File is the path the manifest was read from (in the apps dir for installed apps).
	File string
	// Dir is the directory that build contexts and templates are relative to: the directory of the file
	// after symlinks are resolved, so an installed catalog app finds the catalog's files.
	Dir string
	// Since is File's own mtime (a symlink's creation): of two clashing apps the later one is held.
	Since time.Time
	// HookDeps holds, per pre-start hook, the dependencies its template asks values of (dep "NAME"),
	// tmplref.Dynamic for any; nil for an ownership fix.
	HookDeps [][]string
}

// Set is the result of loading a directory of manifests.
type Set struct {
	// Apps holds the valid apps, sorted by id.
	Apps []*Loaded
	// Problems lists every problem found, sorted by file.
	Problems Problems
	// Invalid holds the ids whose manifest exists but is not acceptable: the reconciler leaves their
	// containers as they are rather than treating them as uninstalled.
	Invalid map[string]bool
	// Providers maps every app id and capability of the valid apps to the app that answers for it
	// (see Providers).
	Providers map[string]string
}

// Providers maps each name a dependency may use to the installed app that answers for it. The rule: an
// app whose id is the name answers for it; otherwise, of the apps that list the name in provides, the
// first by id (so installing bitcoin-core next to bitcoin-knots does not move bitcoin's consumers).
func Providers(apps []*Loaded) map[string]string {
	out := map[string]string{}
	ids := make([]*Loaded, len(apps))
	copy(ids, apps)
	sort.Slice(ids, func(i, j int) bool { return ids[i].ID < ids[j].ID })
	for _, a := range ids {
		for _, c := range a.Provides {
			if _, ok := out[c]; !ok {
				out[c] = a.ID
			}
		}
	}
	for _, a := range ids {
		out[a.ID] = a.ID
	}
	return out
}

// Resolve returns the apps that app's dependencies resolve to, required then installed optional, in
// the order the manifest names them, without duplicates.
func (s *Set) Resolve(a *App) []string {
	var out []string
	seen := map[string]bool{}
	for _, d := range a.Deps() {
		if id, ok := s.Providers[d]; ok && !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out
}

// ByID returns the valid app with the given id.
func (s *Set) ByID(id string) *Loaded {
	for _, a := range s.Apps {
		if a.ID == id {
			return a
		}
	}
	return nil
}

// IsManifestName tells whether a directory entry is a manifest by its name.
func IsManifestName(name string) bool {
	return !strings.HasPrefix(name, ".") && (strings.HasSuffix(name, ".yaml") || strings.HasSuffix(name, ".yml"))
}

func stem(name string) string {
	return strings.TrimSuffix(strings.TrimSuffix(name, ".yaml"), ".yml")
}

// LoadFile reads, parses and validates one manifest file on its own.
func LoadFile(file string, roots Roots) (*Loaded, Problems) {
	data, err := readBounded(file)
	if err != nil {
		return nil, Problems{{file, "", err.Error()}}
	}
	app, ps := Parse(file, data)
	if len(ps) > 0 {
		return nil, ps
	}
	ps = Validate(file, app, roots)
	if want := stem(filepath.Base(file)); app.ID != "" && app.ID != want && IsManifestName(filepath.Base(file)) {
		ps = append(ps, Problem{file, "app.id", fmt.Sprintf("%q does not match the file name; name the file %s.yaml", app.ID, app.ID)})
	}
	dir := filepath.Dir(file)
	if real, err := filepath.EvalSymlinks(file); err == nil {
		dir = filepath.Dir(real)
	}
	if len(ps) == 0 { // the policy holds a valid manifest (no refusal repeats a problem)
		ps = append(checkBuildContexts(file, dir, app), CheckPolicy(file, app, roots)...)
	}
	l := &Loaded{App: *app, File: file, Dir: dir, HookDeps: make([][]string, len(app.Hooks.PreStart))}
	for i, h := range app.Hooks.PreStart {
		if h.Template != "" && !hasDotDot(h.Template) && !filepath.IsAbs(h.Template) {
			f, text := fmt.Sprintf("app.hooks.pre_start[%d].template", i), ""
			b, err := readBounded(filepath.Join(dir, h.Template))
			if text = string(b); err == nil {
				l.HookDeps[i], err = tmplref.Deps(h.Template, text)
			}
			if err != nil {
				ps = append(ps, Problem{file, f, fmt.Sprintf("%s: %v", filepath.Join(dir, h.Template), err)})
			}
		}
	}
	if len(ps) > 0 {
		return nil, ps
	}
	if fi, err := os.Lstat(file); err == nil {
		l.Since = fi.ModTime()
	}
	return l, nil
}

func readBounded(file string) ([]byte, error) {
	fi, err := os.Stat(file)
	if err != nil {
		return nil, fmt.Errorf("cannot read: %w", unwrapPath(err))
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("not a regular file")
	}
	f, err := os.Open(file)
	if err != nil {
		return nil, fmt.Errorf("cannot read: %w", unwrapPath(err))
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("cannot read: %w", unwrapPath(err))
	}
	if len(data) > MaxFileSize {
		return nil, fmt.Errorf("file is larger than %d bytes", MaxFileSize)
	}
	return data, nil
}

func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// LoadDir loads every manifest in dir and checks them against each other: duplicate ids, unknown
// dependencies, dependency cycles and host ports published twice. An app with any problem is left out of
// Apps and listed in Invalid; the others are unaffected. The error is only for a directory that cannot be
// read at all, in which case nothing can be known about the installed set.
func LoadDir(dir string, roots Roots) (*Set, error) {
	files, err := manifestFiles(dir)
	if err != nil {
		return nil, err
	}
	return LoadFiles(files, roots), nil
}

func manifestFiles(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("reading manifest dir %s: %w", dir, unwrapPath(err))
	}
	var files []string
	for _, e := range entries {
		if IsManifestName(e.Name()) {
			files = append(files, filepath.Join(dir, e.Name()))
		}
	}
	return files, nil
}

// LoadFiles loads the given manifest files as one set (see LoadDir).
func LoadFiles(files []string, roots Roots) *Set {
	return loadFiles(files, roots, LoadFile)
}

func loadFiles(files []string, roots Roots, load func(string, Roots) (*Loaded, Problems)) *Set {
	s := &Set{Invalid: map[string]bool{}}
	byID := map[string][]*Loaded{}
	for _, f := range files {
		l, ps := load(f, roots)
		if len(ps) > 0 {
			s.Problems = append(s.Problems, ps...)
			s.Invalid[stem(filepath.Base(f))] = true
			continue
		}
		byID[l.ID] = append(byID[l.ID], l)
	}
	var apps []*Loaded
	for id, ls := range byID {
		if len(ls) > 1 {
			for _, l := range ls {
				s.Problems = append(s.Problems, Problem{l.File, "app.id", fmt.Sprintf("id %q is declared by %d files", id, len(ls))})
			}
			s.Invalid[id] = true
			continue
		}
		apps = append(apps, ls[0])
	}
	sort.Slice(apps, func(i, j int) bool { return apps[i].ID < apps[j].ID })
	bad := map[string]bool{}
	for _, p := range crossCheck(apps, s.Invalid) {
		s.Problems = append(s.Problems, p.Problem)
		bad[p.id] = true
	}
	for _, a := range apps {
		if bad[a.ID] {
			s.Invalid[a.ID] = true
			continue
		}
		s.Apps = append(s.Apps, a)
	}
	s.Providers = Providers(s.Apps)
	sort.SliceStable(s.Problems, func(i, j int) bool { return s.Problems[i].File < s.Problems[j].File })
	return s
}

type appProblem struct {
	Problem
	id string
}

func crossCheck(apps []*Loaded, invalid map[string]bool) []appProblem {
	var out []appProblem
	claimed := map[string]string{} // app id NUL name -> the field that claims it
	byID := map[string]*Loaded{}
	for _, a := range apps {
		byID[a.ID] = a
	}
	// Podman names and companion ids name containers: they must not collide with any app or other
	// companion. Of two apps that clash, the later one (newer) is held, naming both files.
	names := map[string]string{}
	for _, a := range apps {
		names[a.ID] = a.ID
	}
	claim := func(a *Loaded, name, field, what string) {
		other, ok := names[name]
		if !ok || other == a.ID {
			names[name] = a.ID
			return
		}
		o := byID[other]
		loser, winner := newer(a, o), a
		if loser == a {
			winner = o
		} else {
			names[name], field = a.ID, claimed[o.ID+"\x00"+name]
		}
		out = append(out, appProblem{Problem{loser.File, field, fmt.Sprintf("%s %q is already used by app %s (%s)", what, name, winner.ID, winner.File)}, loser.ID})
	}
	for _, a := range apps {
		for _, m := range a.Members() {
			claimed[a.ID+"\x00"+m.PodmanName] = m.Field + ".name"
			claim(a, m.PodmanName, m.Field+".name", "podman name")
		}
	}
	for _, a := range apps {
		for i, c := range a.Companions {
			claimed[a.ID+"\x00"+c.ID] = fmt.Sprintf("app.companions[%d].id", i)
			claim(a, c.ID, fmt.Sprintf("app.companions[%d].id", i), "companion id")
		}
	}
	providers := Providers(apps)
	for _, a := range apps {
		for i, dep := range a.Requires.Apps {
			if _, ok := providers[dep]; !ok {
				reason := fmt.Sprintf("requires app %q, which is not installed and which no installed app provides", dep)
				if invalid[dep] {
					reason = fmt.Sprintf("requires app %q, whose manifest is invalid", dep)
				}
				out = append(out, appProblem{Problem{a.File, fmt.Sprintf("app.requires.apps[%d]", i), reason}, a.ID})
			}
		}
		for _, m := range a.Members() {
			check := func(f, v string) {
				for _, r := range Refs(v) {
					id, ok := providers[r[0]]
					if r[0] == a.ID || !ok {
						continue // own exports are checked by Validate; an absent optional dependency gives ""
					}
					if _, ok := byID[id].Exports[r[1]]; !ok {
						who := id
						if id != r[0] {
							who = fmt.Sprintf("%s (which provides %s)", id, r[0])
						}
						out = append(out, appProblem{Problem{a.File, f, fmt.Sprintf("${%s.%s}: app %s exports no %s (%s)", r[0], r[1], who, r[1], exportList(byID[id]))}, a.ID})
					}
				}
			}
			for _, k := range sortedKeys(m.Env) {
				check(m.Field+".env."+k, m.Env[k])
			}
			for i, w := range m.Command {
				check(fmt.Sprintf("%s.command[%d]", m.Field, i), w)
			}
		}
	}
	var ids []string
	for _, a := range apps {
		ids = append(ids, a.ID)
	}
	out = append(out, checkOptIn(apps, byID, providers)...)
	for _, cyc := range graph.Cycles(ids, func(id string) (out []string) {
		for _, name := range byID[id].Deps() {
			if dep, ok := providers[name]; ok && byID[dep] != nil {
				out = append(out, dep)
			}
		}
		return out
	}) {
		for _, id := range cyc {
			out = append(out, appProblem{Problem{byID[id].File, "app.requires.apps", "dependency cycle: " + strings.Join(append(cyc, cyc[0]), " -> ")}, id})
		}
	}
	// Host ports: one owner per address, port and protocol; 0.0.0.0 (or no address) clashes with all.
	type owner struct {
		id, field string
		port      Port
	}
	var owners []owner
	for _, a := range apps {
		add := func(field string, ports []string) {
			for i, s := range ports {
				p, err := ParsePort(s)
				if err == nil && p.HostPort != 0 {
					owners = append(owners, owner{a.ID, fmt.Sprintf("%s[%d]", field, i), p})
				}
			}
		}
		for _, m := range a.Members() {
			add(m.Field+".ports", m.Ports)
		}
		for i, c := range a.Companions {
			add(fmt.Sprintf("app.companions[%d].ports", i), c.Ports)
		}
	}
	ports := make([]portclash.Port, len(owners))
	for i, o := range owners {
		ports[i] = portclash.Port{Owner: o.id, HostIP: o.port.HostIP, HostPort: o.port.HostPort, Protocol: o.port.Protocol}
	}
	for _, c := range portclash.Clashes(ports) {
		x, y := owners[c[0]], owners[c[1]]
		if newer(byID[x.id], byID[y.id]) == byID[y.id] {
			x, y = y, x
		}
		out = append(out, appProblem{Problem{byID[x.id].File, x.field, fmt.Sprintf("host port %d/%s is also published by app %s (%s: %s)", x.port.HostPort, x.port.Protocol, y.id, byID[y.id].File, y.field)}, x.id})
	}
	return out
}

// newer is the one of two clashing apps installed (or changed) later, the one held: by Since, then by id.
func newer(a, b *Loaded) *Loaded {
	if a.Since.After(b.Since) || (a.Since.Equal(b.Since) && a.ID > b.ID) {
		return a
	}
	return b
}

// Conflicts returns the problems app would have if it were installed next to s's apps (a host port
// or a name another app already uses, an export a dependency lacks): each names both files. app is
// taken as the newest, so it never takes anything from an installed app.
func (s *Set) Conflicts(app *Loaded) Problems {
	c := *app
	c.Since = time.Unix(1<<40, 0)
	apps := append([]*Loaded{&c}, slices.DeleteFunc(slices.Clone(s.Apps), func(a *Loaded) bool { return a.ID == app.ID })...)
	var ps Problems
	for _, p := range crossCheck(apps, s.Invalid) {
		if p.id == app.ID {
			ps = append(ps, p.Problem)
		}
	}
	return ps
}

func exportList(a *Loaded) string {
	if len(a.Exports) == 0 {
		return "it exports nothing"
	}
	return "it exports: " + strings.Join(sortedKeys(a.Exports), ", ")
}
