// Package ops holds the operations that change the installed set (install, remove, purge, rotate a
// secret, reload) and the tickets by which callers queue them, or a bare pass, to the one runner
// (reconciler.Runner) and wait for the answer. It is a model package: D-Bus and HTTP handlers and the
// engine share it without importing each other. Tickets cost no goroutine to wait on.
package ops
