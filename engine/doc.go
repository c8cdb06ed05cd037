// Package engine declares what lockstep needs of the two systems it drives, the podman service
// (Podman) and systemd (Systemd), with their domain types (a listed container, an inspected one, a
// build request, a unit's state) and podman's classified errors (ErrNotFound, ErrConflict,
// ErrUnavailable, ErrImageNotFound, wrapped by an *APIError). It is interfaces and plain data only:
// package podman and package systemd implement it, the reconciler works against it, and neither side
// imports the other. What a container should be (the create request) is package spec's.
package engine
