package reconciler

import (
	"context"

	"github.com/sirupsen/logrus"

	"github.com/lockstep/lockstep/manifest"
	"github.com/lockstep/lockstep/reconciler/companions"
	"github.com/lockstep/lockstep/report"
)

// The companion stage is package companions'; these are the names a pass and its callers use.
type (
	CompanionConfig = companions.Config
	CompanionStats  = companions.Stats
	companionPlan   = companions.Plan
)

// Companion modes (package companions).
const (
	ModeQuadlet = companions.ModeQuadlet
	ModeService = companions.ModeService
	// CompanionSourceRecheck is how soon a pass comes again while a companion waits for a mount source.
	CompanionSourceRecheck = companions.SourceRecheck
)

// planCompanions is the companion plan of the installed set, before the apps stage.
func (r *Reconciler) planCompanions(set *manifest.Set) *companionPlan {
	return companions.NewPlan(r.cfg.Companions, set, r.cfg.Roots)
}

// stopGoneCompanions stops the companions of apps no longer installed, before their containers go.
func (r *Reconciler) stopGoneCompanions(ctx context.Context, p *companionPlan, rep *report.Report) {
	p.StopGone(ctx, rep)
}

// companionsStage applies the companion plan after the apps stage and asks for the pass it needs.
func (r *Reconciler) companionsStage(ctx context.Context, log logrus.FieldLogger, p *companionPlan, rep *report.Report) CompanionStats {
	st, wake := p.Apply(ctx, log, rep, r.cfg.Now(), &r.reloadPending)
	if !wake.IsZero() {
		r.wakeBy(wake)
	}
	return st
}

// CompanionStats returns the counts of the last pass's companion stage.
func (r *Reconciler) CompanionStats() CompanionStats { return r.lastCompanionStats }
