// Package mounts restarts a container once when files it mounts read-only from a dependency change.
//
// Files a container mounts read-only from a dependency (lnd's tls.cert and macaroons in a UI) are
// rewritten by the dependency, in place or when it restarts. The container keeps what it read at its
// start, so lockstep restarts it once when they change: each pass takes a fingerprint of every such
// mount (names, sizes, inodes, modification and change times; never contents), keeps the one each
// container started with, and turns a running, unchanged container whose fingerprint moved into a
// restart. Like a hook's rewritten config, that restart is not a repair: no backoff, no dependents.
// A container this pass starts, restarts or recreates takes the fingerprint of this pass's
// observation. After a restart of lockstepd the first pass only takes fingerprints.
package mounts
