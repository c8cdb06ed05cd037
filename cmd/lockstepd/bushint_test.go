package main

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/lockstep/lockstep/dbusapi"
)

// TestBusHintNamesThePackage: a user whose session bus is not there (no dbus-user-session) is told
// which package starts it; the system bus and other errors get no hint. The errors are dbusapi.Dial's
// own, on this machine.
func TestBusHintNamesThePackage(t *testing.T) {
	t.Setenv("DBUS_SESSION_BUS_ADDRESS", "unix:path="+t.TempDir()+"/bus")
	_, missing := dbusapi.Dial("session")
	if missing == nil {
		t.Fatal("Dial of a missing session bus succeeded")
	}
	os.Unsetenv("DBUS_SESSION_BUS_ADDRESS")
	_, unset := dbusapi.Dial("session")
	for _, c := range []struct {
		bus  string
		err  error
		want bool
	}{
		{"session", missing, true},
		{"session", unset, true},
		{"session", fmt.Errorf("wrapped: %w", missing), true},
		{"system", missing, false},
		{"session", errors.New("permission denied"), false},
	} {
		h := busHint(c.bus, c.err)
		if got := strings.Contains(h, "dbus-user-session"); got != c.want {
			t.Errorf("busHint(%s, %v) = %q, want a hint: %v", c.bus, c.err, h, c.want)
		}
	}
}
