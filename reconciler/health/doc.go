// Package health is lockstep's own health monitor. podman 4.3 schedules health checks through
// systemd timers, so on hosts without them checks never run; the Monitor runs each targeted
// container's check itself on its interval (podman's RunHealthCheck, within a deadline), counts the
// failing streak (podman 4.3 answers with one run's result), honours the start period and retries,
// and tells its caller when a container's health changes. Passes hand it their targets (Set) and
// restarts (Restarted); each target has a generation, so that a check that ran against a restarted
// or dropped container is not written over the new one's health. A pass observes it once
// (Snapshot) before planning.
package health
