// Package units holds lockstep's systemd units, D-Bus policy and activation files (data); its tests
// check them with systemd's own tools.
package units
