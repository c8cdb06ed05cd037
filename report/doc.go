// Package report is the record of one reconcile pass: what it did (actions), what it could not do
// (failures), and every app's and companion's state at its end, with the states and health values a
// row may hold. It is what lockstepd saves in STATE-DIR/report.json (atomically), answers on D-Bus and
// HTTP, and lockstepctl prints. It imports nothing of lockstep but outcome (a failure's class and
// subject) and internal/atomicfile, so that the
// adapters that serve a report (dbusapi, httpapi) never depend on the reconciler that makes it.
package report
