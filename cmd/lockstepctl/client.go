package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"github.com/godbus/dbus/v5"
	"golang.org/x/term"

	"github.com/lockstep/lockstep/dbusapi"
	"github.com/lockstep/lockstep/outcome"
	"github.com/lockstep/lockstep/report"
)

// busOptions are the global flags that say which bus lockstepd is on.
type busOptions struct {
	user    bool   // --user: the session bus
	address string // --bus: an explicit bus address
}

func (o *busOptions) describe() string {
	switch {
	case o.address != "":
		return "the bus at " + o.address
	case o.user:
		return "the session bus"
	}
	return "the system bus"
}

// startHint is what to run when lockstepd is not on the bus.
func (o *busOptions) startHint() string {
	if o.user {
		return "systemctl --user start lockstepd.socket"
	}
	return "systemctl start lockstepd.socket"
}

// client is a connection to lockstepd's D-Bus API.
type client struct {
	conn *dbus.Conn
	obj  dbus.BusObject
	opts *busOptions
}

// systemBusSocket is where the system bus listens unless DBUS_SYSTEM_BUS_ADDRESS says otherwise.
const systemBusSocket = "/run/dbus/system_bus_socket"

// address resolves the options to a bus address, without starting anything (no dbus-launch).
func (o *busOptions) resolve() (string, error) {
	switch {
	case o.address != "":
		return o.address, nil
	case o.user:
		if a := os.Getenv("DBUS_SESSION_BUS_ADDRESS"); a != "" {
			return a, nil
		}
		if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" {
			if _, err := os.Stat(filepath.Join(d, "bus")); err == nil {
				return "unix:path=" + filepath.Join(d, "bus"), nil
			}
		}
		return "", errors.New("there is no session bus for this user (DBUS_SESSION_BUS_ADDRESS is unset and XDG_RUNTIME_DIR has no bus); " +
			"log in through a session that has one, or give --bus ADDRESS")
	}
	if a := os.Getenv("DBUS_SYSTEM_BUS_ADDRESS"); a != "" {
		return a, nil
	}
	if _, err := os.Stat(systemBusSocket); err != nil {
		return "", fmt.Errorf("D-Bus is not running: there is no system bus socket at %s; start it with: systemctl start dbus.socket dbus.service", systemBusSocket)
	}
	return "unix:path=" + systemBusSocket, nil
}

// dial connects to the bus the options name. It does not check that lockstepd is there: calls say so.
func dial(ctx context.Context, o *busOptions) (*client, error) {
	addr, err := o.resolve()
	if err != nil {
		return nil, err
	}
	conn, err := dbus.Connect(addr, dbus.WithContext(ctx))
	if err != nil {
		return nil, dialError(o, addr, err)
	}
	return &client{conn: conn, obj: conn.Object(dbusapi.BusName, dbusapi.ObjectPath), opts: o}, nil
}

func dialError(o *busOptions, addr string, err error) error {
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ENOENT) {
		hint := "check the address given to --bus"
		switch {
		case o.address != "":
		case o.user:
			hint = "check DBUS_SESSION_BUS_ADDRESS, or give --bus ADDRESS"
		default:
			hint = "start it with: systemctl start dbus.socket dbus.service"
		}
		return fmt.Errorf("D-Bus is not running: nothing listens at %s (%v); %s", addr, err, hint)
	}
	return fmt.Errorf("connecting to %s (%s): %w", o.describe(), addr, err)
}

func (c *client) Close() { c.conn.Close() }

// callError turns a D-Bus error into one that says what to do next.
func (c *client) callError(method string, err error) error {
	var de dbus.Error
	var dep *dbus.Error
	switch {
	case errors.As(err, &de):
	case errors.As(err, &dep):
		de = *dep
	default:
		if errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("%s: no answer from lockstepd in time (%v); it may still be working: see lockstepctl status", method, err)
		}
		return fmt.Errorf("%s: %w", method, err)
	}
	msg := ""
	if len(de.Body) > 0 {
		if s, ok := de.Body[0].(string); ok {
			msg = s
		}
	}
	switch de.Name {
	case "org.freedesktop.DBus.Error.ServiceUnknown", "org.freedesktop.DBus.Error.NameHasNoOwner":
		return fmt.Errorf("lockstepd is not running; start it with: %s", c.opts.startHint())
	case "org.freedesktop.DBus.Error.NoReply", "org.freedesktop.DBus.Error.Timeout":
		return fmt.Errorf("%s: no answer from lockstepd in time; it may still be working: see lockstepctl status", method)
	case dbusapi.ErrAccessDenied, "org.freedesktop.DBus.Error.AccessDenied", dbusapi.ErrInteractiveAuthorizationRequired:
		return fmt.Errorf("permission denied: run as root or as a member of group lockstep (%s)", msg)
	case dbusapi.ErrShuttingDown:
		return fmt.Errorf("%w; try again once it is back (systemctl status lockstepd)", &outcome.Refusal{Message: msg, Class: outcome.ClassShuttingDown})
	}
	if class := outcome.ByDBusError(de.Name); class != "" {
		return &outcome.Refusal{Message: msg, Class: class} // the message says what; errors.Is knows the class
	}
	if msg != "" {
		return fmt.Errorf("%s: %s: %s", method, de.Name, msg)
	}
	return fmt.Errorf("%s: %s", method, de.Name)
}

// callReport calls a method that returns a report.
func (c *client) callReport(ctx context.Context, method string, args ...any) (*report.Report, error) {
	call := c.obj.CallWithContext(ctx, dbusapi.Interface+"."+method, dbusapi.CallFlags(term.IsTerminal(int(os.Stdin.Fd()))), args...)
	if call.Err != nil {
		return nil, c.callError(method, call.Err)
	}
	if len(call.Body) != 1 {
		return nil, fmt.Errorf("%s: lockstepd answered %d values, want one report", method, len(call.Body))
	}
	m, ok := call.Body[0].(map[string]dbus.Variant)
	if !ok {
		return nil, fmt.Errorf("%s: lockstepd answered %T, want a report (a{sv})", method, call.Body[0])
	}
	rep, err := dbusapi.DecodeReport(m)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", method, err)
	}
	return rep, nil
}

func (c *client) Report(ctx context.Context) (*report.Report, error) {
	return c.callReport(ctx, "Report")
}

func (c *client) Reconcile(ctx context.Context) (*report.Report, error) {
	return c.callReport(ctx, "Reconcile")
}

func (c *client) Install(ctx context.Context, id string) (*report.Report, error) {
	return c.callReport(ctx, "Install", id)
}

func (c *client) Remove(ctx context.Context, id string, purge bool) (*report.Report, error) {
	return c.callReport(ctx, "Remove", id, purge)
}

// RotateSecret asks for a new value of app's secret export name; the report is the pass's that applied it.
func (c *client) RotateSecret(ctx context.Context, app, name string) (*report.Report, error) {
	return c.callReport(ctx, "RotateSecret", app, name)
}

// State is the State property: idle, reconciling or stopping.
func (c *client) State(ctx context.Context) (string, error) {
	var v dbus.Variant
	err := c.obj.CallWithContext(ctx, "org.freedesktop.DBus.Properties.Get", 0, dbusapi.Interface, "State").Store(&v)
	if err != nil {
		return "", c.callError("State", err)
	}
	s, ok := v.Value().(string)
	if !ok {
		return "", fmt.Errorf("State: lockstepd answered %s, want s", v.Signature())
	}
	return s, nil
}

// Running tells whether lockstepd owns its bus name.
func (c *client) Running(ctx context.Context) (bool, error) {
	var owned bool
	if err := c.conn.BusObject().CallWithContext(ctx, "org.freedesktop.DBus.NameHasOwner", 0, dbusapi.BusName).Store(&owned); err != nil {
		return false, fmt.Errorf("asking the bus for %s: %w", dbusapi.BusName, err)
	}
	return owned, nil
}

// notRunning is the error for a missing lockstepd.
func (c *client) notRunning() error {
	return fmt.Errorf("lockstepd is not running; start it with: %s", c.opts.startHint())
}

// event is what Subscribe delivers: a changed report, or lockstepd leaving or joining the bus.
type event struct {
	report  *report.Report
	owner   bool // for an ownership change: whether lockstepd now owns its name
	ownerEv bool
	err     error
}

// Subscribe follows ReportChanged and the bus name's owner until ctx ends.
func (c *client) Subscribe(ctx context.Context) (<-chan event, error) {
	if err := c.conn.AddMatchSignalContext(ctx, dbus.WithMatchObjectPath(dbusapi.ObjectPath),
		dbus.WithMatchInterface(dbusapi.Interface), dbus.WithMatchMember("ReportChanged")); err != nil {
		return nil, fmt.Errorf("subscribing to ReportChanged: %w", err)
	}
	if err := c.conn.AddMatchSignalContext(ctx, dbus.WithMatchSender("org.freedesktop.DBus"),
		dbus.WithMatchInterface("org.freedesktop.DBus"), dbus.WithMatchMember("NameOwnerChanged"),
		dbus.WithMatchArg(0, dbusapi.BusName)); err != nil {
		return nil, fmt.Errorf("subscribing to NameOwnerChanged: %w", err)
	}
	sigs := make(chan *dbus.Signal, 64)
	c.conn.Signal(sigs)
	out := make(chan event)
	go func() {
		defer close(out)
		defer c.conn.RemoveSignal(sigs)
		for {
			var ev event
			select {
			case <-ctx.Done():
				return
			case s, ok := <-sigs:
				if !ok {
					ev = event{err: errors.New("the bus connection closed")}
					break
				}
				switch {
				case s.Name == dbusapi.Interface+".ReportChanged" && s.Path == dbusapi.ObjectPath:
					m, ok := firstMap(s.Body)
					if !ok {
						continue
					}
					rep, err := dbusapi.DecodeReport(m)
					ev = event{report: rep, err: err}
				case s.Name == "org.freedesktop.DBus.NameOwnerChanged" && len(s.Body) == 3:
					if name, _ := s.Body[0].(string); name != dbusapi.BusName {
						continue
					}
					newOwner, _ := s.Body[2].(string)
					ev = event{ownerEv: true, owner: newOwner != ""}
				default:
					continue
				}
			}
			select {
			case out <- ev:
			case <-ctx.Done():
				return
			}
			if ev.err != nil && ev.report == nil {
				return
			}
		}
	}()
	return out, nil
}

func firstMap(body []any) (map[string]dbus.Variant, bool) {
	if len(body) != 1 {
		return nil, false
	}
	m, ok := body[0].(map[string]dbus.Variant)
	return m, ok
}
