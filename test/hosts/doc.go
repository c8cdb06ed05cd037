//go:build hosts

// Package hosts holds the end-to-end tests that run inside a fresh Debian host (test/hosts/run.sh,
// make test-hosts): a debootstrapped root with lockstep's .deb installed by apt, booted with its own
// systemd in private namespaces. The binary (go test -c -tags hosts) is copied into the host and run
// there as root, one test per step of run.sh; each test checks the host as an operator would, through
// the packaged units, lockstepctl, the API socket, podman and the served pages.
package hosts
