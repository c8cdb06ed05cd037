package main

import (
	"errors"
	"testing"

	"github.com/godbus/dbus/v5"

	"github.com/lockstep/lockstep/dbusapi"
	"github.com/lockstep/lockstep/outcome"
)

// A refusal from lockstepd reads as its message and is, for errors.Is, the class its D-Bus name
// stands for in outcome's table; names outside the table keep the method and name.
func TestCallErrorKeepsTheClass(t *testing.T) {
	c := &client{}
	for _, tt := range []struct {
		name string
		want error
		msg  string
	}{
		{dbusapi.ErrNeeded, outcome.ErrNeeded, "web is needed by shop"},
		{dbusapi.ErrNoSuchApp, outcome.ErrNoSuchApp, "web is not in the catalog"},
		{dbusapi.ErrMissingDependency, outcome.ErrMissingDependency, "shop requires db"},
		{dbusapi.ErrNoSuchSecret, outcome.ErrNoSecret, "bitcoin declares no secret x"},
		{dbusapi.ErrInvalidManifest, outcome.ErrInvalidManifest, "bad.yaml: app.nme: unknown key"},
		{dbusapi.ErrShuttingDown, outcome.ErrShuttingDown, "lockstepd is shutting down; try again once it is back (systemctl status lockstepd)"},
	} {
		err := c.callError("Remove", dbus.Error{Name: tt.name, Body: []any{tt.msg}})
		if tt.name == dbusapi.ErrShuttingDown {
			err = c.callError("Remove", dbus.Error{Name: tt.name, Body: []any{"lockstepd is shutting down"}})
		}
		if !errors.Is(err, tt.want) || err.Error() != tt.msg {
			t.Errorf("%s: %q (is %v: %v)", tt.name, err, tt.want, errors.Is(err, tt.want))
		}
	}
	err := c.callError("Remove", dbus.Error{Name: dbusapi.ErrFailed, Body: []any{"creating: boom"}})
	if err.Error() != "creating: boom" || errors.Is(err, outcome.ErrTimeout) {
		t.Errorf("Failed: %v", err)
	}
	err = c.callError("Remove", dbus.Error{Name: "org.example.Other", Body: []any{"x"}})
	if err.Error() != "Remove: org.example.Other: x" {
		t.Errorf("other: %v", err)
	}
}
