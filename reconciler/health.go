package reconciler

import "context"

// HealthChecker runs a container's health check on demand (podman's RunHealthCheck): podman 4.3
// schedules health checks through systemd timers, so without them checks never run; lockstep runs
// them itself on each app's interval.
type HealthChecker interface {
	RunHealthCheck(ctx context.Context, nameOrID string) (status string, failingStreak int, err error)
}

// RunHealthChecks runs the health monitor (package health) until ctx ends, calling changed(app,
// status) when an app's health changes (lockstepd then asks for a pass).
func (r *Reconciler) RunHealthChecks(ctx context.Context, hc HealthChecker, changed func(app, status string)) {
	r.health.Run(ctx, hc, r.cfg.Timeouts.Call, r.cfg.Now, r.cfg.Log, changed)
}
