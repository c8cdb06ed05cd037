// Package reconciler runs lockstep's passes, one at a time, from the Runner's goroutine. A pass
// observes once (observe.go, which only reads: the installed manifests, one podman list, the
// desired containers of package spec, the health monitor's view, port probes, pre-start hooks
// rendered by package hooks without writing, the backoff, reachability and rollback books, the
// time), plans once (plan.Plan, pure: it folds in rollback judging, health, reachability repairs,
// backoff, dependent restarts, hook outcomes and waits for healthy dependencies), then executes: it
// saves the secrets and writes the hooks the plan asks for, runs the actions in dependency waves
// against an engine.Podman (images made present by package images), records what happened (the
// report rows of package report, the books, the health monitor's targets), runs the companion stage
// (package companions) and saves the report. docs/architecture.md gives the order and why.
//
// It also applies the operations that change what is installed, queued to the Runner (package ops)
// and applied at the start of a pass, each check with its effect: install and remove (with their
// dependency checks), purge (data, secrets, images) and rotate-secret (package secrets keeps the
// values). Every pass has a deadline, and so has every podman and companion systemd call in it
// (package deadline); a call cut short fails as a classified timeout. The health monitor (package health) runs
// beside the Runner and only writes health results, each tagged with its target's generation, so
// that a late result for a restarted container is dropped.
//
// Its own state lives in STATE-DIR: report.json, adopted.json, rollback.json, images.json and
// secrets/, each written atomically.
//
// Observe is the same observe and plan with nothing executed and the books dropped (lockstepctl
// plan): it changes nothing by construction, and a reconciler made with Config.ReadOnly creates no
// state dir. The reconciler works against package engine's interfaces,
// never against podman or systemd directly; internal/archtest holds that.
package reconciler
