// Package deadline gives every call a pass makes its deadline (issue 15): podman calls (a short one
// for list, inspect, create, start, remove, networks and image checks; plus the container's stop
// grace for a stop; a long one for a pull or build), the companion stage's systemd calls, and the
// health monitor's checks. A call cut short fails with outcome.ErrTimeout naming the call and the
// deadline, or outcome.ErrCancelled when lockstepd's stop cancelled the pass.
package deadline
