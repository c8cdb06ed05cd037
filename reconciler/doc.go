// Package reconciler observes podman, plans per app and executes the plan, one pass at a time.
//
// The Runner (runner.go) is the one goroutine that changes anything: it applies queued operations
// (package ops: install, remove, purge, rotate-secret, reload) at the start of a pass, each check
// with its effect, then runs the pass. Every pass has a deadline, and so has every podman and
// companion systemd call in it (deadline.go); a call cut short fails as a classified timeout. The
// health monitor (health.go) runs beside it and only writes health results, each tagged with its
// target's generation so that a late result for a restarted container is dropped.
package reconciler
