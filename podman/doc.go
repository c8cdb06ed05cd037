// Package podman implements reconciler.Podman over one connection to the podman service's API.
package podman
