package reconciler

import (
	"context"

	"github.com/lockstep/lockstep/outcome"
	"github.com/lockstep/lockstep/report"
	"github.com/lockstep/lockstep/spec"
)

// HostChecker says what the host's podman cannot do for the desired containers (whose lockstep
// networks start with networkPrefix): *hostcheck.Checker, wired by cmd/lockstepd. Problems is called
// once per pass that reached podman; it must not ask podman every time.
type HostChecker interface {
	Problems(ctx context.Context, desired []*spec.Desired, networkPrefix string) []report.HostProblem
}

// checkHost puts the host's problems into the report, and one failure on every app a problem
// affects, so that FailingApps and the app's row say why it cannot work.
func (r *Reconciler) checkHost(ctx context.Context, desired []*spec.Desired, rep *report.Report) {
	if r.cfg.Host == nil {
		return
	}
	rep.HostProblems = r.cfg.Host.Problems(ctx, desired, r.cfg.NetworkPrefix)
	for _, p := range rep.HostProblems {
		for _, app := range p.Apps {
			rep.Failures = append(rep.Failures, report.Failure{App: app, Error: "host: " + p.Message + "; fix: " + p.Fix,
				Class: outcome.ClassHost, Subject: outcome.SubjectApp})
		}
	}
}
