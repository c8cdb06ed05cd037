package dbusapi

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/godbus/dbus/v5"
	"github.com/sirupsen/logrus"

	"github.com/lockstep/lockstep/internal/peer"
)

// polkit actions (units/org.lockstep.policy), one per changing method; a purge is asked for on its
// own, before the removal it follows.
const (
	ActionReconcile    = "org.lockstep.reconcile"
	ActionInstall      = "org.lockstep.install"
	ActionRemove       = "org.lockstep.remove"
	ActionPurge        = "org.lockstep.purge"
	ActionRotateSecret = "org.lockstep.rotate-secret"
	// ActionManage is the operator's stop and start of the apps (no method uses it yet).
	ActionManage = "org.lockstep.manage"
)

// Polkit modes (Config.Polkit).
const (
	// PolkitAuto asks polkit where polkitd answers on the bus, else decides by the admin group.
	PolkitAuto = "auto"
	// PolkitOff decides by the admin group only.
	PolkitOff = "off"
)

// ErrInteractiveAuthorizationRequired is the standard error for a call that polkit would allow
// after authentication, made without the ALLOW_INTERACTIVE_AUTHORIZATION flag.
const ErrInteractiveAuthorizationRequired = "org.freedesktop.DBus.Error.InteractiveAuthorizationRequired"

const (
	polkitName      = "org.freedesktop.PolicyKit1"
	polkitPath      = "/org/freedesktop/PolicyKit1/Authority"
	polkitInterface = "org.freedesktop.PolicyKit1.Authority"
	// polkit's CheckAuthorizationFlags.
	polkitAllowUserInteraction = 1
)

// CallFlags are the flags of a client's call of a changing method: ALLOW_INTERACTIVE_AUTHORIZATION
// when the client is interactive (lockstepctl on a terminal, as systemctl does), so polkit may ask
// for a password through the session's agent.
func CallFlags(interactive bool) dbus.Flags {
	if interactive {
		return dbus.FlagAllowInteractiveAuthorization
	}
	return 0
}

// errNoPolkit: polkitd is not on the bus (not installed): the group rule decides.
var errNoPolkit = errors.New("polkit is not available")

// authorize decides whether the sender of msg may carry out action, as systemd's daemons do: root
// (and the user lockstepd runs as) always; otherwise polkit's CheckAuthorization for the sender's
// bus name, with user interaction allowed when the caller set ALLOW_INTERACTIVE_AUTHORIZATION (a
// desktop client then gets its agent's password prompt); where polkitd is absent (or Polkit is
// off), membership of the admin group, by the caller's real groups.
func (s *Server) authorize(msg dbus.Message, sender dbus.Sender, method, action string) *dbus.Error {
	s.mu.Lock()
	stopping := s.stopping
	s.mu.Unlock()
	if stopping {
		return dbus.NewError(ErrShuttingDown, []any{"lockstepd is shutting down"})
	}
	c, err := callerOf(s.Conn(), string(sender))
	if err != nil {
		return dbus.NewError(ErrAccessDenied, []any{err.Error()})
	}
	if peer.Privileged(c, "") { // root, or lockstepd's own user
		return nil
	}
	log := s.cfg.Log.WithFields(logrus.Fields{"uid": c.UID, "method": method, "action": action})
	if s.cfg.Polkit != PolkitOff {
		interactive := msg.Flags&dbus.FlagAllowInteractiveAuthorization != 0
		ok, challenge, err := s.checkPolkit(string(sender), action, interactive)
		switch {
		case err == nil && ok:
			return nil
		case err == nil && challenge && !interactive:
			return dbus.NewError(ErrInteractiveAuthorizationRequired, []any{fmt.Sprintf("%s needs authentication (polkit action %s): call it with interactive authorization allowed", method, action)})
		case err == nil && challenge: // interactive, and no agent authenticated the caller
			log.Warn("polkit refused a call: no authentication")
			return dbus.NewError(ErrAccessDenied, []any{fmt.Sprintf("%s: polkit refused action %s: it needs authentication, and no polkit agent authenticated the caller (uid %d)", method, action, c.UID)})
		case err == nil:
			log.Warn("polkit refused a call")
			return dbus.NewError(ErrAccessDenied, []any{fmt.Sprintf("%s: polkit refused action %s (caller uid %d)", method, action, c.UID)})
		case !errors.Is(err, errNoPolkit):
			log.WithError(err).Warn("asking polkit")
			return dbus.NewError(ErrAccessDenied, []any{fmt.Sprintf("%s: asking polkit: %v", method, err)})
		}
	}
	if !peer.Privileged(c, s.cfg.AdminGroup) {
		log.Warn("refused an unprivileged call")
		return dbus.NewError(ErrAccessDenied, []any{fmt.Sprintf("%s needs root or membership of group %s (caller uid %d)", method, s.cfg.AdminGroup, c.UID)})
	}
	return nil
}

// checkPolkit asks polkit whether the bus name sender may carry out action. A user's answer to a
// password prompt can take a while: an interactive check waits up to 5 minutes.
func (s *Server) checkPolkit(sender, action string, interactive bool) (ok, challenge bool, err error) {
	subject := struct {
		Kind    string
		Details map[string]dbus.Variant
	}{"system-bus-name", map[string]dbus.Variant{"name": dbus.MakeVariant(sender)}}
	var flags uint32
	timeout := 25 * time.Second
	if interactive {
		flags, timeout = polkitAllowUserInteraction, 5*time.Minute
	}
	if !s.polkitPresent() {
		return false, false, errNoPolkit
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var result struct {
		Authorized, Challenge bool
		Details               map[string]string
	}
	call := s.Conn().Object(polkitName, polkitPath).CallWithContext(ctx, polkitInterface+".CheckAuthorization", 0,
		subject, action, map[string]string{}, flags, "")
	if call.Err != nil {
		return false, false, call.Err // polkit is there but did not answer: refused
	}
	if err := call.Store(&result); err != nil {
		return false, false, fmt.Errorf("polkit's answer: %w", err)
	}
	return result.Authorized, result.Challenge, nil
}

// polkitPresent tells whether polkitd runs on the bus or the bus can start it (D-Bus activation,
// as on a host with the polkitd package).
func (s *Server) polkitPresent() bool {
	bus := s.Conn().BusObject()
	var has bool
	if bus.Call("org.freedesktop.DBus.NameHasOwner", 0, polkitName).Store(&has) == nil && has {
		return true
	}
	var names []string
	if bus.Call("org.freedesktop.DBus.ListActivatableNames", 0).Store(&names) == nil {
		for _, n := range names {
			if n == polkitName {
				return true
			}
		}
	}
	return false
}
