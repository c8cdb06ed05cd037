package dbusapi

import (
	"fmt"
	"os"
	"os/user"
	"strconv"

	"github.com/godbus/dbus/v5"
)

// Caller is who sent a method call, from the bus's view of its credentials.
type Caller struct {
	UID    uint32
	GIDs   []uint32 // supplementary groups, when the bus reports them
	HasGID bool
}

// callerOf asks the bus for sender's credentials.
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

// Privileged tells whether caller may change things: uid 0, the user lockstepd itself runs as (a
// user-scope daemon serves its own user), or a member of group (by the groups the bus reports for the
// connection, else by the user database).
func Privileged(c Caller, group string) bool {
	if c.UID == 0 || c.UID == uint32(os.Getuid()) {
		return true
	}
	if group == "" {
		return false
	}
	g, err := user.LookupGroup(group)
	if err != nil {
		return false
	}
	gid64, err := strconv.ParseUint(g.Gid, 10, 32)
	if err != nil {
		return false
	}
	gid := uint32(gid64)
	if c.HasGID {
		for _, x := range c.GIDs {
			if x == gid {
				return true
			}
		}
		return false
	}
	u, err := user.LookupId(strconv.FormatUint(uint64(c.UID), 10))
	if err != nil {
		return false
	}
	ids, err := u.GroupIds()
	if err != nil {
		return false
	}
	for _, id := range ids {
		if id == g.Gid {
			return true
		}
	}
	return false
}
