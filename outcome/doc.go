// Package outcome is what lockstep's failures and refusals are: sentinel errors that the reconciler
// wraps (a refused install, remove, purge or secret rotation; a deadline; podman unreachable), the
// Class of an error (Of, with errors.Is, never by a message's text), the Subject a failure is about
// (app, container, companion, manifest, pass), and the one table from a class to its metric label,
// the word lockstepctl prints and the D-Bus error name. It imports nothing of lockstep, so every side
// can use it.
package outcome
