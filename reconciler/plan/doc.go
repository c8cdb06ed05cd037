// Package plan decides, without any I/O, everything a pass does. Plan takes the desired containers
// (package spec) and one Observation (what podman listed, the adoption records, the health monitor's
// view, port probes, pre-start hook outcomes, the backoff, reachability and rollback books, the time)
// and returns a Result: one Action per container with its cause (none, start, install, recreate,
// force-recreate, adopt, remove, hold, wait, restart, rollback), the hook writes that come first, and
// the books as the plan leaves them. Match is its first step (desired against listed); the folds
// after it (rollback judging, health, reachability, healthy dependencies, backoff, dependents after
// a repair, hooks) run in the order docs/architecture.md gives with the reasons. Order groups the
// actions into waves that respect dependencies and a stack's start order, removals first. Its
// imports hold it pure: internal/archtest refuses an I/O package here.
package plan
