// Package hooks works out and writes an app's pre-start hooks: a template (Go text/template with
// dep, has, export and secret, over the app's id, name, version and data dir) rendered in memory,
// bounded in size and time, and written, only when its content changed, inside the app's data dir
// with its mode (0600 by default when it calls secret or dep) and owner; or an ownership fix of a
// path and everything under it. All file work goes through internal/beneath, relative to an open
// handle on the data dir and following no symlink: the app's containers write there, and a symlink
// they swap in makes the hook fail, never write or chown outside. Render only reads (a pass's
// observation and lockstepctl plan use it); Apply writes what Render worked out (the executor,
// before any container of the pass starts). Exported values come through a Value function, so the
// package never makes a secret itself. The plan decides what a changed file or a failed hook means
// for the pass.
package hooks
