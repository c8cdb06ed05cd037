// Package plan decides, without any I/O, what a pass does to each container: Plan compares the
// desired containers (package spec) with what podman listed and the adoption records, and returns one
// Action per container with its cause (none, start, install, recreate, force-recreate, adopt, remove,
// hold, wait; restart and rollback come from later stages of a pass); Order groups the actions into
// waves that respect dependencies and a stack's start order, removals first. Its imports hold it
// pure: internal/archtest refuses an I/O package here.
package plan
