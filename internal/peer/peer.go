// Package peer is who called lockstepd, over D-Bus or its unix socket, and whether that caller may
// change things or read the report. dbusapi and httpapi both decide with it, so neither imports the
// other, and both decide the same way: by the caller's uid and its real groups, as the kernel gave
// them to the connection (the bus's GetConnectionCredentials, the socket's SO_PEERCRED and
// SO_PEERGROUPS), never by the user database, which may say something else.
package peer

import (
	"fmt"
	"net"
	"os"
	"os/user"
	"strconv"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Caller is who sent a method call, as the bus (GetConnectionCredentials) or the socket
// (SO_PEERCRED, SO_PEERGROUPS) tells it.
type Caller struct {
	UID    uint32
	GIDs   []uint32 // the caller's groups, when known (HasGID)
	HasGID bool
}

// Privileged tells whether caller may change things: uid 0, the user lockstepd itself runs as (a
// user-scope daemon serves its own user), or a member of group.
func Privileged(c Caller, group string) bool {
	if c.UID == 0 || c.UID == uint32(os.Getuid()) {
		return true
	}
	return Member(c, group)
}

// Reader tells whether caller may read the report and the metrics: a privileged caller (admin
// group), or a member of readGroup. A lockstepd that runs as a user (user scope) serves only who
// can reach it, its user's session bus and 0700 runtime dir: there everyone it sees may read (root
// may appear as the overflow uid, from a user namespace of the user's manager).
func Reader(c Caller, readGroup, adminGroup string) bool {
	return os.Getuid() != 0 || Privileged(c, adminGroup) || Member(c, readGroup)
}

// Member tells whether group (a name) is one of the caller's real groups. A caller whose groups
// are not known is a member of none.
func Member(c Caller, group string) bool {
	if group == "" || !c.HasGID {
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
	for _, x := range c.GIDs {
		if x == uint32(gid64) {
			return true
		}
	}
	return false
}

// OfUnixConn returns the credentials of the process at the other end of c, as they were when it
// connected: its uid, its primary group and its supplementary groups.
func OfUnixConn(c *net.UnixConn) (Caller, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return Caller{}, err
	}
	var out Caller
	var cerr error
	err = raw.Control(func(fd uintptr) {
		cred, err := unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
		if err != nil {
			cerr = fmt.Errorf("SO_PEERCRED: %w", err)
			return
		}
		groups, err := peerGroups(int(fd))
		if err != nil {
			cerr = fmt.Errorf("SO_PEERGROUPS: %w", err)
			return
		}
		out = Caller{UID: cred.Uid, GIDs: append(groups, cred.Gid), HasGID: true}
	})
	if err == nil {
		err = cerr
	}
	return out, err
}

func peerGroups(fd int) ([]uint32, error) {
	buf := make([]uint32, 64)
	for {
		n := uint32(len(buf) * 4)
		_, _, errno := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(fd), unix.SOL_SOCKET, unix.SO_PEERGROUPS,
			uintptr(unsafe.Pointer(&buf[0])), uintptr(unsafe.Pointer(&n)), 0)
		if errno == unix.ERANGE && int(n/4) > len(buf) {
			buf = make([]uint32, n/4)
			continue
		}
		if errno != 0 {
			return nil, errno
		}
		return buf[:n/4], nil
	}
}
