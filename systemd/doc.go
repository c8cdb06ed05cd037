// Package systemd drives systemd units over its D-Bus API (go-systemd), never by shelling out.
package systemd
