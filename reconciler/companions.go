package reconciler

import (
	"context"

	"github.com/sirupsen/logrus"

	"github.com/lockstep/lockstep/manifest"
	"github.com/lockstep/lockstep/reconciler/companions"
	"github.com/lockstep/lockstep/report"
)

// planCompanions is the companion plan of the installed set, before the apps stage.
func (r *Reconciler) planCompanions(set *manifest.Set) *companions.Plan {
	return companions.NewPlan(r.cfg.Companions, set, r.cfg.Roots)
}

// stopGoneCompanions stops the companions of apps no longer installed, before their containers go.
func (r *Reconciler) stopGoneCompanions(ctx context.Context, p *companions.Plan, rep *report.Report) {
	p.StopGone(ctx, rep)
}

// companionsStage applies the companion plan after the apps stage and asks for the pass it needs.
func (r *Reconciler) companionsStage(ctx context.Context, log logrus.FieldLogger, p *companions.Plan, rep *report.Report) companions.Stats {
	st, wake := p.Apply(ctx, log, rep, r.cfg.Now(), &r.reloadPending)
	if !wake.IsZero() {
		r.wakeBy(wake)
	}
	return st
}

// CompanionStats returns the counts of the last pass's companion stage.
func (r *Reconciler) CompanionStats() companions.Stats { return r.lastCompanionStats }
