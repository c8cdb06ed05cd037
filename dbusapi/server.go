package dbusapi

import (
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"sync"

	"github.com/godbus/dbus/v5"
	"github.com/godbus/dbus/v5/introspect"
	"github.com/godbus/dbus/v5/prop"
	"github.com/sirupsen/logrus"

	"github.com/lockstep/lockstep/internal/peer"
	"github.com/lockstep/lockstep/ops"
	"github.com/lockstep/lockstep/outcome"
	"github.com/lockstep/lockstep/report"
)

// Names of the API; see docs/dbus-api.md.
const (
	BusName     = "org.lockstep.Reconciler1"
	ObjectPath  = dbus.ObjectPath("/org/lockstep/Reconciler1")
	Interface   = "org.lockstep.Reconciler1"
	ErrorPrefix = Interface + ".Error."
)

// States of the State property.
const (
	StateIdle        = "idle"
	StateReconciling = "reconciling"
	StateStopping    = "stopping"
)

// Named errors: the D-Bus names of outcome's classes (its table is the one mapping), and Failed for
// everything else.
var (
	ErrAccessDenied    = outcome.ClassAccessDenied.DBusError()
	ErrNoSuchApp       = outcome.ClassNoSuchApp.DBusError()
	ErrInvalidManifest = outcome.ClassInvalidManifest.DBusError()
	ErrShuttingDown    = outcome.ClassShuttingDown.DBusError()
	ErrFailed          = outcome.ClassFailed.DBusError()
	ErrNoSuchSecret    = outcome.ClassNoSecret.DBusError()
	ErrNeeded          = outcome.ClassNeeded.DBusError()
	// ErrMissingDependency: Install of an app whose requirements no installed app answers for.
	ErrMissingDependency = outcome.ClassMissingDependency.DBusError()
)

// Backend is what the API drives: the runner's queue (passes and operations) and the last report.
type Backend interface {
	Request(trigger string) *ops.Ticket
	Submit(op ops.Op) *ops.Ticket
	Last() *report.Report
}

// Config tunes the server.
type Config struct {
	// AdminGroup may call the methods that change things, besides root (default "lockstep").
	AdminGroup string
	// ReadGroup may call Report, besides root and AdminGroup (default none: "lockstep-read" is
	// lockstepd's default).
	ReadGroup string
	// Polkit is PolkitAuto (the default: ask polkit where polkitd runs) or PolkitOff.
	Polkit string
	Log    logrus.FieldLogger
}

// Server is the exported object. Every D-Bus call runs in its own goroutine (godbus); the methods only
// queue a ticket to the runner and wait for it: operations are checked and applied by the runner, so
// neither they nor passes race.
type Server struct {
	conn  *dbus.Conn
	b     Backend
	cfg   Config
	props *prop.Properties

	mu       sync.Mutex
	spliced  bool // conn was made by Dial
	stopping bool
	emitted  *report.Report // the last report whose content was announced
	encoded  *report.Report // the report whose encoding is cached in enc
	enc      map[string]dbus.Variant
	token    uint64 // enc's entry in the cache of encoded bodies (wire.go)
}

// encode returns r's a{sv}, reusing the last encoding while r is the same report: Report() is called
// far more often than passes end. The map is never modified after it is made, so concurrent replies
// may share it. On a connection made by Dial the reply is a placeholder that the connection replaces
// with the bytes encoded once for this report (wire.go).
func (s *Server) encode(r *report.Report) map[string]dbus.Variant {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.enc == nil || s.encoded != r {
		s.enc, s.encoded = EncodeReport(report.Bounded(r)), r // never past the bus's message limit
		if s.spliced {
			s.token = bodies.add(s.enc, s.token)
		}
	}
	if s.spliced {
		return bodies.placeholder(s.token)
	}
	return s.enc
}

// object holds exactly the exported D-Bus methods.
type object struct{ s *Server }

// Export puts the object, its properties and introspection on conn. Call RequestName after it.
func Export(conn *dbus.Conn, b Backend, cfg Config) (*Server, error) {
	if cfg.AdminGroup == "" {
		cfg.AdminGroup = "lockstep"
	}
	if cfg.Log == nil {
		l := logrus.New()
		l.SetLevel(logrus.PanicLevel)
		cfg.Log = l
	}
	s := &Server{b: b, cfg: cfg, emitted: b.Last()}
	if err := s.Attach(conn); err != nil {
		return nil, err
	}
	return s, nil
}

// Attach exports the object on conn, a new connection after the old one was lost (a restarted
// dbus-daemon), with the properties' current values; call RequestName after it. Nothing is
// emitted: a client of the new bus reads the current state, and ReportChanged comes with the next
// report whose content changed since the last one announced.
func (s *Server) Attach(conn *dbus.Conn) error {
	s.mu.Lock()
	last := s.emitted
	state := StateIdle
	if s.stopping {
		state = StateStopping
	}
	s.mu.Unlock()
	if l := s.b.Last(); l != nil {
		last = l
	}
	var lastID uint64
	if last != nil {
		lastID = last.PassID
	}
	props, err := prop.Export(conn, ObjectPath, prop.Map{Interface: {
		"State":       {Value: state, Emit: prop.EmitTrue},
		"LastPassId":  {Value: lastID, Emit: prop.EmitTrue},
		"FailingApps": {Value: failing(last), Emit: prop.EmitTrue},
	}})
	if err != nil {
		return fmt.Errorf("exporting properties: %w", err)
	}
	obj := object{s}
	if err := conn.Export(obj, ObjectPath, Interface); err != nil {
		return fmt.Errorf("exporting %s: %w", ObjectPath, err)
	}
	node := &introspect.Node{
		Name: string(ObjectPath),
		// NewIntrospectable adds Introspectable and Peer.
		Interfaces: []introspect.Interface{
			prop.IntrospectData,
			{
				Name:       Interface,
				Methods:    methods(obj),
				Signals:    []introspect.Signal{{Name: "ReportChanged", Args: []introspect.Arg{{Name: "report", Type: ReportSignature}}}},
				Properties: props.Introspection(Interface),
			},
		},
	}
	if err := conn.Export(introspect.NewIntrospectable(node), ObjectPath, "org.freedesktop.DBus.Introspectable"); err != nil {
		return fmt.Errorf("exporting introspection: %w", err)
	}
	s.mu.Lock()
	s.conn, s.props, s.spliced = conn, props, Spliced(conn)
	s.enc, s.encoded = nil, nil // re-registered for the new connection on first use
	s.mu.Unlock()
	return nil
}

// Conn returns the connection the object is exported on.
func (s *Server) Conn() *dbus.Conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conn
}

func (s *Server) bound() (*dbus.Conn, *prop.Properties) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conn, s.props
}

// argNames names the arguments that introspect.Methods generates from the Go signatures.
var argNames = map[string][]string{
	"Reconcile": {"report"},
	"Report":    {"report"},
	"Install":   {"id", "report"},
	"Remove":    {"id", "purge", "report"},
	// RotateSecret returns the report of the pass that applied the new value, never the value.
	"RotateSecret": {"app", "name", "report"},
}

func methods(obj object) []introspect.Method {
	ms := introspect.Methods(obj)
	for i := range ms {
		names := argNames[ms[i].Name]
		for j := range ms[i].Args {
			if j < len(names) {
				ms[i].Args[j].Name = names[j]
			}
		}
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].Name < ms[j].Name })
	return ms
}

// ErrNotPrimaryOwner means another process owns the bus name.
var ErrNotPrimaryOwner = errors.New("another process owns " + BusName)

// RequestName takes the bus name, failing unless this connection becomes its primary owner.
func (s *Server) RequestName() error {
	reply, err := s.Conn().RequestName(BusName, dbus.NameFlagDoNotQueue)
	if err != nil {
		return fmt.Errorf("requesting %s: %w", BusName, err)
	}
	if reply != dbus.RequestNameReplyPrimaryOwner && reply != dbus.RequestNameReplyAlreadyOwner {
		return ErrNotPrimaryOwner
	}
	return nil
}

// setProp sets a property. SetMust stores the value, then panics if PropertiesChanged cannot be
// sent: on a lost connection that only logs (Attach exports current values on the next one).
func (s *Server) setProp(props *prop.Properties, name string, v any) {
	defer func() {
		if r := recover(); r != nil {
			s.cfg.Log.WithField("property", name).Warnf("announcing a property change: %v", r)
		}
	}()
	props.SetMust(Interface, name, v)
}

// PassStarted is the runner's Started hook.
func (s *Server) PassStarted(string) {
	s.mu.Lock()
	stopping, props := s.stopping, s.props
	s.mu.Unlock()
	if !stopping {
		s.setProp(props, "State", StateReconciling)
	}
}

// PassFinished is the runner's Finished hook: it updates the properties and emits ReportChanged when
// the report's content differs from the last one announced.
func (s *Server) PassFinished(r *report.Report) {
	if r == nil {
		return
	}
	s.mu.Lock()
	stopping, conn, props := s.stopping, s.conn, s.props
	changed := !report.SameContent(s.emitted, r)
	if changed {
		s.emitted = r
	}
	s.mu.Unlock()
	s.setProp(props, "LastPassId", r.PassID)
	if f := failing(r); strings.Join(f, ",") != strings.Join(props.GetMust(Interface, "FailingApps").([]string), ",") {
		s.setProp(props, "FailingApps", f)
	}
	if !stopping {
		s.setProp(props, "State", StateIdle)
	}
	if changed {
		if err := conn.Emit(ObjectPath, Interface+".ReportChanged", s.encode(r)); err != nil {
			s.cfg.Log.WithError(err).Warn("emitting ReportChanged")
		}
	}
}

// ShutDown makes new calls fail with ShuttingDown and sets State to stopping.
func (s *Server) ShutDown() {
	s.mu.Lock()
	s.stopping = true
	props := s.props
	s.mu.Unlock()
	s.setProp(props, "State", StateStopping)
}

func failing(r *report.Report) []string {
	out := []string{}
	if r == nil {
		return out
	}
	seen := map[string]bool{}
	for _, f := range r.Failures {
		if f.App != "" && !seen[f.App] {
			seen[f.App] = true
			out = append(out, f.App)
		}
	}
	sort.Strings(out)
	return out
}

// wait waits for a ticket: the report of its pass, or its operation's error as a D-Bus error.
func (s *Server) wait(t *ops.Ticket) (map[string]dbus.Variant, *dbus.Error) {
	<-t.Done()
	r, err := t.Result()
	if err != nil {
		return nil, mapErr(err)
	}
	return s.encode(r), nil
}

var idRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)

// Reconcile runs a pass that starts after this call (joining one already queued) and returns its report.
func (o object) Reconcile(msg dbus.Message, sender dbus.Sender) (map[string]dbus.Variant, *dbus.Error) {
	if err := o.s.authorize(msg, sender, "Reconcile", ActionReconcile); err != nil {
		return nil, err
	}
	return o.s.wait(o.s.b.Request("dbus"))
}

// Report returns the last completed report, to root, the admin group and the read group.
func (o object) Report(sender dbus.Sender) (map[string]dbus.Variant, *dbus.Error) {
	c, err := callerOf(o.s.Conn(), string(sender))
	if err != nil {
		return nil, dbus.NewError(ErrAccessDenied, []any{err.Error()})
	}
	if !peer.Reader(c, o.s.cfg.ReadGroup, o.s.cfg.AdminGroup) {
		return nil, dbus.NewError(ErrAccessDenied, []any{fmt.Sprintf("Report needs root or membership of group %s or %s (caller uid %d)", o.s.cfg.ReadGroup, o.s.cfg.AdminGroup, c.UID)})
	}
	return o.s.encode(o.s.b.Last()), nil
}

// Install enables catalog app id and returns the report of the pass that installs it.
func (o object) Install(msg dbus.Message, sender dbus.Sender, id string) (map[string]dbus.Variant, *dbus.Error) {
	if err := o.s.authorize(msg, sender, "Install", ActionInstall); err != nil {
		return nil, err
	}
	if !idRE.MatchString(id) {
		return nil, dbus.NewError(ErrNoSuchApp, []any{fmt.Sprintf("%q is not an app id", id)})
	}
	return o.s.wait(o.s.b.Submit(ops.Op{Kind: ops.Install, App: id}))
}

// Remove disables app id (companions first, then the container) and, with purge, deletes its data
// once the container is gone. A purge is authorized on its own (polkit action org.lockstep.purge),
// before anything is removed: a caller who may remove but not purge changes nothing.
func (o object) Remove(msg dbus.Message, sender dbus.Sender, id string, purge bool) (map[string]dbus.Variant, *dbus.Error) {
	if err := o.s.authorize(msg, sender, "Remove", ActionRemove); err != nil {
		return nil, err
	}
	if purge {
		if err := o.s.authorize(msg, sender, "Remove with purge", ActionPurge); err != nil {
			return nil, err
		}
	}
	if !idRE.MatchString(id) {
		return nil, dbus.NewError(ErrNoSuchApp, []any{fmt.Sprintf("%q is not an app id", id)})
	}
	rep, derr := o.s.wait(o.s.b.Submit(ops.Op{Kind: ops.Remove, App: id}))
	if derr != nil || !purge {
		return rep, derr
	}
	// The purge is an operation of its own, applied once the remove's pass is over: it checks that
	// no container of the app is left, and an Install queued meanwhile is applied after it.
	// The reply is still the report of the pass that removed the app.
	t := o.s.b.Submit(ops.Op{Kind: ops.Purge, App: id})
	<-t.Done()
	if _, err := t.Result(); errors.Is(err, ops.ErrStopped) {
		return nil, mapErr(err)
	} else if err != nil {
		return nil, dbus.NewError(ErrFailed, []any{err.Error()})
	}
	return rep, nil
}

// RotateSecret gives app's secret export name a new random value and returns the report of the pass
// that re-renders and restarts its consumers. The value is in no reply, log or error.
func (o object) RotateSecret(msg dbus.Message, sender dbus.Sender, app, name string) (map[string]dbus.Variant, *dbus.Error) {
	if err := o.s.authorize(msg, sender, "RotateSecret", ActionRotateSecret); err != nil {
		return nil, err
	}
	if !idRE.MatchString(app) {
		return nil, dbus.NewError(ErrNoSuchApp, []any{fmt.Sprintf("%q is not an app id", app)})
	}
	rep, derr := o.s.wait(o.s.b.Submit(ops.Op{Kind: ops.RotateSecret, App: app, Name: name}))
	if derr == nil {
		o.s.cfg.Log.WithFields(logrus.Fields{"app": app, "secret": name}).Info("secret rotated")
	}
	return rep, derr
}

// mapErr answers a refused call with the D-Bus error name of its class (outcome's table).
func mapErr(err error) *dbus.Error {
	return dbus.NewError(outcome.Of(err).DBusError(), []any{err.Error()})
}
