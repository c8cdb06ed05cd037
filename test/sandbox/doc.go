//go:build sandbox

// Package sandbox holds the tests that need a real systemd; make test-sandbox runs them inside the
// harness in ./harness.
package sandbox
