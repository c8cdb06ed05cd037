package dbusapi

import (
	"fmt"

	"github.com/godbus/dbus/v5"

	"github.com/lockstep/lockstep/internal/peer"
)

// Caller is who sent a method call, from the bus's view of its credentials (package peer).
type Caller = peer.Caller

func callerOf(conn *dbus.Conn, sender string) (Caller, error) {
	var creds map[string]dbus.Variant
	err := conn.BusObject().Call("org.freedesktop.DBus.GetConnectionCredentials", 0, sender).Store(&creds)
	if err != nil {
		// Older buses: the uid alone.
		var uid uint32
		if err2 := conn.BusObject().Call("org.freedesktop.DBus.GetConnectionUnixUser", 0, sender).Store(&uid); err2 != nil {
			return Caller{}, fmt.Errorf("asking the bus who %s is: %w", sender, err)
		}
		return Caller{UID: uid}, nil
	}
	var c Caller
	v, ok := creds["UnixUserID"]
	if !ok {
		return Caller{}, fmt.Errorf("the bus did not give the uid of %s", sender)
	}
	if err := v.Store(&c.UID); err != nil {
		return Caller{}, fmt.Errorf("uid of %s: %w", sender, err)
	}
	if g, ok := creds["UnixGroupIDs"]; ok {
		if err := g.Store(&c.GIDs); err == nil {
			c.HasGID = true
		}
	}
	return c, nil
}
