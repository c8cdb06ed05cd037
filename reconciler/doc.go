// Package reconciler observes podman, plans per app and executes the plan, one pass at a time.
package reconciler
