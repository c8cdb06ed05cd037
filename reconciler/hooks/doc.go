// Package hooks works out and writes an app's pre-start hooks: a template (Go text/template with
// dep, has, export and secret, over the app's id, name, version and data dir) rendered in memory and
// written, only when its content changed, inside the app's data dir (a path that leads out of it
// through a symlink is refused, since the app's containers can write there), with its mode and
// owner; or an ownership fix that Lchowns what differs under a path without following symlinks.
// Render only reads (a pass's observation and lockstepctl plan use it); Apply writes what Render
// worked out (the executor, before any container of the pass starts). Exported values come through
// a Value function, so the package never makes a secret itself. The plan decides what a changed
// file or a failed hook means for the pass.
package hooks
