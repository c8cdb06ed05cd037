// Package runner is the one goroutine that changes the world (issue 15): it applies the queued
// operations (package ops) at the start of a pass, in the order they were submitted, each check with
// its effect, then runs the pass; every caller only queues a ticket and waits on it. A pass has a
// deadline; on a stop it may go on for the stop grace, then is cancelled. Progressing tells the
// daemon whether to feed systemd's watchdog.
package runner
