// Package probe tells whether a container's published TCP ports answer from the host: a TCP connect,
// or, where the manifest's container.probes names a path for the port's container port, an HTTP GET
// of that path that answers 2xx or 3xx (redirects not followed, no proxy, Timeout per probe). An
// unspecified host address is probed on loopback. Probes live in the manifest only, not in the create
// request, so they never change the spec hash. A pass's observation probes (reconciler/observe.go);
// package plan decides what an unanswered port means (repairs, rollback judging); this package only
// looks.
package probe
