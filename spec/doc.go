// Package spec turns a loaded manifest into the containers an installed app should have: for each
// container, the create request lockstep sends podman (image, command and env with exported values
// expanded, ports, volumes and mounts resolved to host paths, networks, capabilities spelled and
// sorted, health check, stop timeout, labels) and its spec hash under every scheme lockstep knows.
// The hash is over an allow-list of what reaches the container, normalized; scheme v1's input is
// frozen (see HashV1), so an upgrade of lockstep alone never recreates a container. The package is
// pure: values that need I/O (secrets) come through Wiring.Value.
package spec
