package dbusapi

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"

	"github.com/lockstep/lockstep/internal/testenv"
	"github.com/lockstep/lockstep/outcome"
	"github.com/lockstep/lockstep/reconciler"
	"github.com/lockstep/lockstep/report"
)

// fakePasser produces reports; content changes only when its content field changes.
type fakePasser struct {
	enabled  []string
	disabled []string
	purged   []string
	rotated  []string
	opMu     sync.Mutex
	mu       sync.Mutex
	passes   atomic.Int64
	delay    atomic.Int64 // nanoseconds
	content  string
	last     *report.Report
}

func (f *fakePasser) Pass(ctx context.Context, trigger string) *report.Report {
	n := f.passes.Add(1)
	time.Sleep(time.Duration(f.delay.Load()))
	f.mu.Lock()
	defer f.mu.Unlock()
	r := &report.Report{PassID: uint64(n), Trigger: trigger, StartedAt: time.Now(), FinishedAt: time.Now(),
		Apps: []report.AppStatus{{ID: "web", State: "running", Health: "healthy", Image: "x:1", ContainerID: "abc"}}}
	if f.content != "" {
		r.Failures = []report.Failure{{App: "web", Error: f.content}}
		r.Actions = []report.ActionRec{{App: "web", Action: "start", Cause: "container is exited"}}
	}
	f.last = r
	return r
}

func (f *fakePasser) set(content string) {
	f.mu.Lock()
	f.content = content
	f.mu.Unlock()
}

type fakeBackend struct {
	*reconciler.Runner
	p *fakePasser
}

func (b *fakeBackend) Last() *report.Report {
	b.p.mu.Lock()
	defer b.p.mu.Unlock()
	return b.p.last
}

// Apply is the runner's: operations reach the backend only through it.
func (b *fakePasser) Apply(ctx context.Context, op reconciler.Op) error {
	switch op.Kind {
	case reconciler.OpInstall:
		return b.Enable(op.App)
	case reconciler.OpRemove:
		return b.Disable(op.App)
	case reconciler.OpPurge:
		return b.Purge(op.App)
	case reconciler.OpRotateSecret:
		return b.RotateSecret(op.App, op.Name)
	}
	return fmt.Errorf("unknown op %s", op)
}

func (b *fakePasser) Enable(id string) error {
	if id == "missing" {
		return fmt.Errorf("%w: %q", outcome.ErrNoSuchApp, id)
	}
	if id == "broken" {
		return fmt.Errorf("%w: broken.yaml: app.x: unknown key", outcome.ErrInvalidManifest)
	}
	b.opMu.Lock()
	b.enabled = append(b.enabled, id)
	b.opMu.Unlock()
	return nil
}
func (b *fakePasser) Disable(id string) error {
	if id == "missing" {
		return fmt.Errorf("%w: %q", outcome.ErrNotInstalled, id)
	}
	b.opMu.Lock()
	b.disabled = append(b.disabled, id)
	b.opMu.Unlock()
	return nil
}
func (b *fakePasser) RotateSecret(app, name string) error {
	if name != "rpc_password" {
		return fmt.Errorf("%w: app %s declares no secret %s", outcome.ErrNoSecret, app, name)
	}
	b.opMu.Lock()
	b.rotated = append(b.rotated, app+"/"+name)
	b.opMu.Unlock()
	return nil
}
func (b *fakePasser) Purge(id string) error {
	b.opMu.Lock()
	b.purged = append(b.purged, id)
	b.opMu.Unlock()
	return nil
}

type env struct {
	bus    *testenv.Bus
	srv    *Server
	b      *fakeBackend
	p      *fakePasser
	client *dbus.Conn
	cancel func()
}

func start(t testing.TB, cfg testenv.BusConfig, group string) *env {
	t.Helper()
	bus := testenv.StartBus(t, cfg)
	conn, err := Dial(bus.Address) // as lockstepd connects
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	p := &fakePasser{}
	p.delay.Store(int64(20 * time.Millisecond))
	runner := reconciler.NewRunner(p)
	b := &fakeBackend{Runner: runner, p: p}
	srv, err := Export(conn, b, Config{AdminGroup: group})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.RequestName(); err != nil {
		t.Fatal(err)
	}
	runner.Started = srv.PassStarted
	runner.Finished = srv.PassFinished
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { runner.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	client, err := dbus.Connect(bus.Address)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	return &env{bus: bus, srv: srv, b: b, p: p, client: client, cancel: cancel}
}

func (e *env) obj() dbus.BusObject { return e.client.Object(BusName, ObjectPath) }

func policy() testenv.BusConfig {
	return testenv.BusConfig{Policies: []string{"../units/org.lockstep.Reconciler1.conf"}}
}

func TestMethodsPropertiesAndSignal(t *testing.T) {
	e := start(t, policy(), "lockstep")
	// Subscribe to ReportChanged and PropertiesChanged.
	if err := e.client.AddMatchSignal(dbus.WithMatchObjectPath(ObjectPath)); err != nil {
		t.Fatal(err)
	}
	sigs := make(chan *dbus.Signal, 100)
	e.client.Signal(sigs)

	var rep map[string]dbus.Variant
	if err := e.obj().Call(Interface+".Reconcile", 0).Store(&rep); err != nil {
		t.Fatal(err)
	}
	if rep["PassId"].Value().(uint64) != 1 || rep["Trigger"].Value().(string) != "dbus" {
		t.Fatalf("report %v", rep)
	}
	for _, k := range []string{"PassId", "Trigger", "StartedUsec", "FinishedUsec", "Actions", "Failures", "Apps", "Companions"} {
		if _, ok := rep[k]; !ok {
			t.Errorf("report lacks %s", k)
		}
	}
	var apps []map[string]dbus.Variant
	if err := rep["Apps"].Store(&apps); err != nil || len(apps) != 1 || apps[0]["Id"].Value() != "web" || apps[0]["ContainerId"].Value() != "abc" {
		t.Errorf("Apps %v: %v", rep["Apps"], err)
	}
	var got map[string]dbus.Variant
	if err := e.obj().Call(Interface+".Report", 0).Store(&got); err != nil || got["PassId"].Value().(uint64) != 1 {
		t.Fatalf("Report: %v %v", got, err)
	}
	v, err := e.obj().GetProperty(Interface + ".LastPassId")
	if err != nil || v.Value().(uint64) != 1 {
		t.Fatalf("LastPassId %v %v", v, err)
	}
	v, _ = e.obj().GetProperty(Interface + ".State")
	if v.Value().(string) != StateIdle {
		t.Fatalf("State %v", v)
	}

	// Pass 1 changed the report (from none): one ReportChanged. Pass 2 is identical: none.
	// Pass 3 changes content: one more.
	if err := e.obj().Call(Interface+".Reconcile", 0).Store(&rep); err != nil {
		t.Fatal(err)
	}
	e.p.set("boom")
	if err := e.obj().Call(Interface+".Reconcile", 0).Store(&rep); err != nil {
		t.Fatal(err)
	}
	v, _ = e.obj().GetProperty(Interface + ".FailingApps")
	if fmt.Sprint(v.Value()) != "[web]" {
		t.Fatalf("FailingApps %v", v.Value())
	}
	time.Sleep(200 * time.Millisecond)
	var changed []uint64
	var states []string
	for len(sigs) > 0 {
		s := <-sigs
		switch s.Name {
		case Interface + ".ReportChanged":
			changed = append(changed, s.Body[0].(map[string]dbus.Variant)["PassId"].Value().(uint64))
		case "org.freedesktop.DBus.Properties.PropertiesChanged":
			if st, ok := s.Body[1].(map[string]dbus.Variant)["State"]; ok {
				states = append(states, st.Value().(string))
			}
		}
	}
	if fmt.Sprint(changed) != "[1 3]" {
		t.Fatalf("ReportChanged for passes %v, want [1 3]", changed)
	}
	if strings.Join(states, " ") != "reconciling idle reconciling idle reconciling idle" {
		t.Fatalf("State changes: %v", states)
	}
}

func TestConcurrentReconcilesCoalesce(t *testing.T) {
	e := start(t, policy(), "lockstep")
	e.p.delay.Store(int64(200 * time.Millisecond))
	var wg sync.WaitGroup
	errs := make(chan error, 50)
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var rep map[string]dbus.Variant
			errs <- e.obj().Call(Interface+".Reconcile", 0).Store(&rep)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := e.p.passes.Load(); n > 2 || n < 1 {
		t.Fatalf("50 concurrent Reconcile calls ran %d passes, want 1 or 2", n)
	}
}

func TestInstallRemoveAndErrors(t *testing.T) {
	e := start(t, policy(), "lockstep")
	var rep map[string]dbus.Variant
	if err := e.obj().Call(Interface+".Install", 0, "web").Store(&rep); err != nil {
		t.Fatal(err)
	}
	if err := e.obj().Call(Interface+".Remove", 0, "web", true).Store(&rep); err != nil {
		t.Fatal(err)
	}
	if err := e.obj().Call(Interface+".Remove", 0, "other", false).Store(&rep); err != nil {
		t.Fatal(err)
	}
	if err := e.obj().Call(Interface+".RotateSecret", 0, "bitcoin", "rpc_password").Store(&rep); err != nil {
		t.Fatal(err)
	}
	e.p.opMu.Lock()
	saw := fmt.Sprint(e.p.enabled, e.p.disabled, e.p.purged, e.p.rotated)
	e.p.opMu.Unlock()
	if saw != "[web] [web other] [web] [bitcoin/rpc_password]" {
		t.Fatalf("backend saw %s", saw)
	}
	for _, tt := range []struct {
		method string
		args   []any
		want   string
	}{
		{"Install", []any{"missing"}, ErrNoSuchApp},
		{"Install", []any{"../etc"}, ErrNoSuchApp},
		{"Install", []any{"broken"}, ErrInvalidManifest},
		{"Remove", []any{"missing", false}, ErrNoSuchApp},
		{"RotateSecret", []any{"bitcoin", "nope"}, ErrNoSuchSecret},
		{"RotateSecret", []any{"../x", "rpc_password"}, ErrNoSuchApp},
	} {
		err := e.obj().Call(Interface+"."+tt.method, 0, tt.args...).Err
		if de, ok := err.(dbus.Error); !ok || de.Name != tt.want {
			t.Errorf("%s%v: %v, want %s", tt.method, tt.args, err, tt.want)
		}
	}
	e.srv.ShutDown()
	err := e.obj().Call(Interface+".Reconcile", 0).Err
	if de, ok := err.(dbus.Error); !ok || de.Name != ErrShuttingDown {
		t.Fatalf("after shutdown: %v", err)
	}
	// Reading still works while stopping.
	if err := e.obj().Call(Interface+".Report", 0).Store(&rep); err != nil {
		t.Fatal(err)
	}
}

func TestRealClients(t *testing.T) {
	testenv.Need(t, "busctl", "gdbus")
	e := start(t, policy(), "lockstep")
	run := func(user, name string, args ...string) string {
		t.Helper()
		out, err := e.bus.Run(user, name, args...)
		if err != nil {
			t.Fatalf("%s %v as %q: %v\n%s", name, args, user, err, out)
		}
		return out
	}
	// busctl (system bus, as the examples in docs/dbus-api.md).
	out := run("", "busctl", "--system", "--json=short", "call", BusName, string(ObjectPath), Interface, "Reconcile")
	var reply struct {
		Type string `json:"type"`
		Data []map[string]struct {
			Type string `json:"type"`
			Data any    `json:"data"`
		} `json:"data"`
	}
	if err := json.Unmarshal([]byte(out), &reply); err != nil || reply.Type != "a{sv}" {
		t.Fatalf("busctl Reconcile: %v %s", err, out)
	}
	if reply.Data[0]["PassId"].Data.(float64) != 1 {
		t.Fatalf("busctl Reconcile pass id: %s", out)
	}
	// The wire types of docs/dbus-api.md.
	for k, want := range map[string]string{"PassId": "t", "Trigger": "s", "StartedUsec": "t", "FinishedUsec": "t",
		"Actions": "a(sss)", "Failures": "a(ss)", "Apps": "aa{sv}", "Companions": "aa{sv}", "CompanionMode": "s", "HostProblems": "aa{sv}",
		"FailureDetails": "aa{sv}"} {
		if got := reply.Data[0][k].Type; got != want {
			t.Errorf("%s has type %q, want %q", k, got, want)
		}
	}
	// Report is for the read group (here none) and the admin group: nobody is refused by lockstepd.
	if out, err := e.bus.Run("nobody", "busctl", "--system", "call", BusName, string(ObjectPath), Interface, "Report"); err == nil || !strings.Contains(out, "Report needs root or membership of group") {
		t.Fatalf("busctl Report as nobody: %v %s", err, out)
	}
	for _, p := range []string{"State", "LastPassId", "FailingApps"} {
		run("nobody", "busctl", "--system", "get-property", BusName, string(ObjectPath), Interface, p)
	}
	out = run("nobody", "busctl", "--system", "introspect", BusName, string(ObjectPath), Interface)
	for _, want := range []string{".Reconcile", ".Report", ".Install", ".Remove", ".ReportChanged", ".State", ".LastPassId", ".FailingApps"} {
		if !strings.Contains(out, want) {
			t.Errorf("introspection lacks %s:\n%s", want, out)
		}
	}
	run("nobody", "busctl", "--system", "call", BusName, string(ObjectPath), "org.freedesktop.DBus.Peer", "Ping")
	// gdbus.
	out = run("", "gdbus", "call", "--system", "--dest", BusName, "--object-path", string(ObjectPath), "--method", Interface+".Reconcile")
	if !strings.Contains(out, "'PassId': <uint64 2>") {
		t.Fatalf("gdbus Reconcile: %s", out)
	}
	out = run("nobody", "gdbus", "call", "--system", "--dest", BusName, "--object-path", string(ObjectPath), "--method", "org.freedesktop.DBus.Properties.GetAll", Interface)
	if !strings.Contains(out, "'State': <'idle'>") || !strings.Contains(out, "'LastPassId': <uint64 2>") {
		t.Fatalf("gdbus GetAll: %s", out)
	}
	out = run("nobody", "gdbus", "introspect", "--system", "--dest", BusName, "--object-path", string(ObjectPath))
	if !strings.Contains(out, "Reconcile(out a{sv} report)") || !strings.Contains(out, "Remove(in  s id,") {
		t.Fatalf("gdbus introspect: %s", out)
	}
}

func TestUnprivilegedCallersAreRefused(t *testing.T) {
	testenv.Need(t, "busctl", "setpriv")
	// With the shipped policy (which, as systemd's, lets anyone send and leaves the decision to
	// lockstepd: polkit, or here without polkitd the admin group), nobody is refused.
	e := start(t, policy(), "lockstep")
	out, err := e.bus.Run("nobody", "busctl", "--system", "call", BusName, string(ObjectPath), Interface, "Reconcile")
	if err == nil || !strings.Contains(out, "needs root or membership of group lockstep") {
		t.Fatalf("shipped policy let nobody call Reconcile: %v %s", err, out)
	}
	out, err = e.bus.Run("nobody", "busctl", "--system", "call", BusName, string(ObjectPath), Interface, "RotateSecret", "ss", "bitcoin", "rpc_password")
	if err == nil || !strings.Contains(out, "needs root or membership of group lockstep") {
		t.Fatalf("shipped policy let nobody call RotateSecret: %v %s", err, out)
	}
	if n := e.p.passes.Load(); n != 0 {
		t.Fatalf("a refused call ran %d passes", n)
	}
	// With a bus that allows everything, lockstepd's own check refuses, and nothing runs.
	e2 := start(t, testenv.BusConfig{}, "lockstep")
	for _, call := range [][]string{{"Reconcile"}, {"Install", "s", "web"}, {"Remove", "sb", "web", "true"}, {"RotateSecret", "ss", "bitcoin", "rpc_password"}} {
		args := append([]string{"--system", "call", BusName, string(ObjectPath), Interface}, call...)
		out, err = e2.bus.Run("nobody", "busctl", args...)
		if err == nil || !strings.Contains(out, "needs root or membership of group lockstep") {
			t.Fatalf("%s as nobody: %v %s", call[0], err, out)
		}
	}
	e2.p.opMu.Lock()
	changes := len(e2.p.enabled) + len(e2.p.disabled) + len(e2.p.rotated)
	e2.p.opMu.Unlock()
	if n := e2.p.passes.Load(); n != 0 || changes != 0 {
		t.Fatalf("a refused call changed something: %d passes, %d changes", n, changes)
	}
	// Membership of the admin group is enough: nobody is in nogroup.
	e3 := start(t, testenv.BusConfig{}, "nogroup")
	if out, err := e3.bus.Run("nobody", "busctl", "--system", "call", BusName, string(ObjectPath), Interface, "Reconcile"); err != nil {
		t.Fatalf("admin group member refused: %v %s", err, out)
	}
}

func TestNameOwnedElsewhere(t *testing.T) {
	e := start(t, policy(), "lockstep")
	conn, err := dbus.Connect(e.bus.Address)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	s2, err := Export(conn, e.b, Config{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s2.RequestName(); err != ErrNotPrimaryOwner {
		t.Fatalf("second owner: %v", err)
	}
}
