// Package reconciler runs lockstep's passes, one at a time, from the Runner's goroutine. A pass
// observes (the installed manifests, one podman list), computes the desired containers (package
// spec) and plans them (package plan, pure), then folds in, in a fixed order, rollback judging and
// holds, health, reachability repairs, restart backoff, dependent restarts, pre-start hooks (package
// hooks) and waits for healthy dependencies; it executes the actions in dependency waves against an
// engine.Podman (images made present by package images), records what happened (the report rows of
// package report, the rollback book, backoff, the health monitor's targets), runs the companion
// stage (package companions) and saves the report. docs/architecture.md gives the order and why.
//
// It also answers the requests that change what is installed: Enable and Disable (with their
// dependency checks), Purge (data, secrets, images) and RotateSecret (package secrets keeps the
// values). Its own state lives in STATE-DIR: report.json, adopted.json, rollback.json, images.json
// and secrets/, each written atomically.
//
// Observe plans without changing anything (lockstepctl plan), and a reconciler made with
// Config.ReadOnly creates no state dir. The reconciler works against package engine's interfaces,
// never against podman or systemd directly; internal/archtest holds that.
package reconciler
