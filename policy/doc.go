// Package policy is the node operator's policy, /etc/lockstep/policy.yaml: what an app manifest may
// ask of the host beyond lockstep's defaults. Deny by default: with no file, or an empty one, no
// manifest may add a capability, use the host's network, run as user 0, join a network that is not
// its own (or a dependency's exports network, bridge or none), bind a host path outside its own
// data dir, or relabel or chown (:z, :Z, :U) a source outside it. Grants are per app (apps.ID) or for
// every app (all_apps). Check is pure: package manifest calls it on its one load path for every
// container and companion, and each refusal names the key that would allow it.
package policy
