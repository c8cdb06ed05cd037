package reconciler

import (
	"context"
	"strings"

	"github.com/lockstep/lockstep/hostcheck"
)

// HostChecker says what the host's podman cannot do for the installed apps (*hostcheck.Checker).
// Problems is called once per pass that reached podman; it must not ask podman every time.
type HostChecker interface {
	Problems(ctx context.Context, uses []hostcheck.Use) []hostcheck.Problem
}

// checkHost puts the host's problems into the report, and one failure on every app a problem
// affects, so that FailingApps and the app's row say why it cannot work.
func (r *Reconciler) checkHost(ctx context.Context, desired []*Desired, rep *Report) {
	if r.cfg.Host == nil {
		return
	}
	uses := make([]hostcheck.Use, 0, len(desired))
	for _, d := range desired {
		u := hostcheck.Use{App: d.App.ID}
		for _, n := range append([]string{d.Request.Network}, d.Request.Networks...) {
			if strings.HasPrefix(n, r.cfg.NetworkPrefix) {
				u.Networks = append(u.Networks, n)
			}
		}
		uses = append(uses, u)
	}
	rep.HostProblems = r.cfg.Host.Problems(ctx, uses)
	for _, p := range rep.HostProblems {
		for _, app := range p.Apps {
			rep.Failures = append(rep.Failures, Failure{App: app, Error: "host: " + p.Message + "; fix: " + p.Fix})
		}
	}
}
