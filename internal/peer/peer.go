// Package peer is who called lockstepd, over D-Bus or its unix socket, and whether that caller may
// change things. dbusapi and httpapi both decide with it, so neither imports the other.
package peer

import (
	"os"
	"os/user"
	"strconv"
)

// Caller is who sent a method call, as the bus (GetConnectionCredentials) or
// the socket (SO_PEERCRED) tells it.
type Caller struct {
	UID    uint32
	GIDs   []uint32 // supplementary groups, when the bus reports them
	HasGID bool
}

// callerOf asks the bus for sender's credentials.
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
