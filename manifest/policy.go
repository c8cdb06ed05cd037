package manifest

import (
	"fmt"
	"strings"

	"github.com/lockstep/lockstep/policy"
)

// CheckPolicy holds a valid app to the operator's policy (roots.Policy; package policy): what each of
// its containers and companions adds of capabilities, its network, its user, where its volume sources
// lie and which of them it relabels. Every refusal names the key of the policy that would allow it.
func CheckPolicy(file string, a *App, roots Roots) Problems {
	var ps Problems
	deps := a.Deps()
	check := func(field string, caps Capabilities, network, user string, vols []string) {
		e := policy.Entry{App: a.ID, Field: field, DataDir: roots.AppData(a.ID), ExtraRoots: roots.Extra,
			NetworkPrefix: roots.NetworkPrefix, Deps: deps, CapAdd: caps.Add, Network: network, User: user}
		for i, s := range vols {
			if v, err := ParseVolume(s, roots.AppData(a.ID)); err == nil {
				e.Volumes = append(e.Volumes, policy.Volume{Field: fmt.Sprintf("%s.volumes[%d]", field, i), Source: v.Source, Options: v.Options})
			}
		}
		for _, r := range roots.Policy.Check(e) {
			ps = append(ps, Problem{file, r.Field, r.Reason})
		}
	}
	for _, m := range a.Members() {
		check(m.Field, m.Capabilities, m.Network, m.User, m.Volumes)
	}
	for i, c := range a.Companions {
		check(fmt.Sprintf("app.companions[%d]", i), c.Capabilities, c.Network, c.User, c.Volumes)
	}
	return ps
}

// checkBuildContexts refuses a build context (or Containerfile) that, once symlinks are resolved, is
// not inside the manifest's directory dir: lockstepd uploads the whole context to the build, so a
// context elsewhere would hand any host directory (the state dir's secrets, another app's data) to
// the image. No policy key allows it.
func checkBuildContexts(file, dir string, a *App) Problems {
	var ps Problems
	for _, m := range a.Members() {
		b := m.Build
		if b == nil || b.Context == "" {
			continue
		}
		if _, err := policy.BuildContext(dir, b.Context, b.Containerfile); err != nil {
			f := map[bool]string{false: ".build.context", true: ".build.containerfile"}[strings.HasPrefix(err.Error(), "containerfile")]
			ps = append(ps, Problem{file, m.Field + f, err.Error()})
		}
	}
	return ps
}

// checkOptIn holds the installed set to its providers' word: another app reads a provider's data only
// at the paths the provider shares (shared_paths), and its secret exports only those it shares
// (shared: true), and only when it requires the provider (Validate checks that). Each problem is the
// consumer's.
func checkOptIn(apps []*Loaded, byID map[string]*Loaded, providers map[string]string) []appProblem {
	var out []appProblem
	for _, a := range apps {
		bad := func(field, format string, args ...any) {
			out = append(out, appProblem{Problem{a.File, field, fmt.Sprintf(format, args...)}, a.ID})
		}
		mounts := func(field string, ms []DepMount) {
			for i, dm := range ms {
				id, ok := providers[dm.From]
				if !ok || id == a.ID {
					continue // an optional dependency not installed mounts nothing; the app's own data is its own
				}
				if !policy.Shares(byID[id].SharedPaths, dm.Path) {
					shares := "it shares no path"
					if sp := byID[id].SharedPaths; len(sp) > 0 {
						shares = "it shares: " + strings.Join(sp, ", ")
					}
					bad(fmt.Sprintf("%s.mounts[%d].path", field, i), "%q is not a path app %s shares (%s); a provider shares data with shared_paths", dm.Path, id, shares)
				}
			}
		}
		for _, m := range a.Members() {
			mounts(m.Field, m.Mounts)
			refs := func(f, v string) {
				for _, r := range Refs(v) {
					id, ok := providers[r[0]]
					if !ok || id == a.ID {
						continue
					}
					if e, ok := byID[id].Exports[r[1]]; ok && e.Secret && !e.Shared {
						bad(f, "${%s.%s}: app %s does not share its secret %s (a provider shares a secret export with shared: true)", r[0], r[1], id, r[1])
					}
				}
			}
			for _, k := range sortedKeys(m.Env) {
				refs(m.Field+".env."+k, m.Env[k])
			}
			for i, w := range m.Command {
				refs(fmt.Sprintf("%s.command[%d]", m.Field, i), w)
			}
		}
		for i, c := range a.Companions {
			mounts(fmt.Sprintf("app.companions[%d]", i), c.Mounts)
		}
	}
	return out
}
