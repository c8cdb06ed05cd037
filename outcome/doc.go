// Package outcome names the classified refusals of what lockstepd is asked to do (install, remove,
// purge, rotate a secret): sentinel errors that the reconciler wraps and that the D-Bus API maps to
// its error names and lockstepctl to its messages, with errors.Is, never by a message's text. It
// imports nothing, so every side can use it.
package outcome
