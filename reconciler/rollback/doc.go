// Package rollback is the book of update with rollback (issue 7 point 8): per container, its last
// known-good create request, the spec that failed and was rolled back, and the trial in progress,
// persisted in STATE-DIR/rollback.json. The reconciler (rollback.go) judges trials and holds
// rolled-back apps by it; this package keeps and saves it.
//
// lockstep keeps, per container (an app's one container, or each container of a stack, by podman
// name), the last known-good CreateRequest: the request of a container it saw healthy (or, without a
// health check, running past the settle window and answering on its published ports). When a manifest
// change recreates a container (KindRecreate) and a known-good spec with another hash exists, the new
// container is on trial. In a stack each container is judged, rolled back and held on its own. A trial fails when, before it is judged good:
//   - the app has a health check and its health turns unhealthy (failing retries times after the start
//     period), or is still not healthy at the trial's deadline (start period + (retries+1) checks with
//     their timeout: a check that never completes is caught here);
//   - the container is not running (exited, crashed, left created by a failed start, gone);
//   - the app has no health check and a published port still does not answer once both the settle
//     window and the reachability grace have passed.
//
// A failed trial makes the pass roll back (KindRollback): the container is recreated from the saved
// good request, labels included, so it carries the good spec's hash. The failed hash is remembered, and
// while the manifest still asks for it the app is held "rolled-back": it is planned against the good
// spec (started if it dies, restarted if unhealthy, as any app) instead of being recreated again.
// A manifest change to any other hash is a new attempt; a change back to the good spec is a no-op.
//
// Everything is persisted in STATE-DIR/rollback.json (mode 0600: env may hold secrets), written
// atomically and only when it changed, so a restart of lockstepd neither forgets a good spec nor
// retries a failed one, and a no-op pass writes nothing.
package rollback
