// Package testenv starts the real components tests run against: a private podman service, a registry.
package testenv
