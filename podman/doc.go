// Package podman implements engine.Podman over one connection to the podman service's API.
package podman
