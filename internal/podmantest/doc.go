// Package podmantest is the one fake podman of lockstep's pure-logic tests: an in-memory, stateful
// engine.Podman (Create adds a container, Start and Stop change its state, Remove deletes it, a pull
// or a build makes an image present) that records every call as "Op arg", fails the calls it is told
// to, and can hang a call until its context ends, for deadline tests. Whatever a test can observe of
// it (its containers, images, networks and calls) is in exported fields, under Mu.
//
// Every I/O path is also tested against the real podman (internal/testenv); this fake is for the
// logic around it: plans, the executor's order and error handling, deadlines, reports.
package podmantest
