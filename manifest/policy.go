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
		f := m.Field + ".build.context"
		if _, err := policy.BuildContext(dir, b.Context, b.Containerfile); err != nil {
			if strings.HasPrefix(err.Error(), "containerfile") {
				f = m.Field + ".build.containerfile"
			}
			ps = append(ps, Problem{file, f, err.Error()})
		}
	}
	return ps
}
