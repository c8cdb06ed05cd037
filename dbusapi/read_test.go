package dbusapi

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"

	"github.com/lockstep/lockstep/internal/testenv"
	"github.com/lockstep/lockstep/reconciler"
)

// startRead is start with a read group.
func startRead(t *testing.T, cfg testenv.BusConfig, c Config) *env {
	t.Helper()
	bus := testenv.StartBus(t, cfg)
	conn, err := Dial(bus.Address)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	p := &fakePasser{}
	runner := reconciler.NewRunner(p)
	b := &fakeBackend{Runner: runner, p: p}
	srv, err := Export(conn, b, c)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.RequestName(); err != nil {
		t.Fatal(err)
	}
	runner.Started, runner.Finished = srv.PassStarted, srv.PassFinished
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

// Report is answered to the read group (by the caller's real groups: nobody's nogroup here) and
// refused to others; the read group may not change anything.
func TestReportIsForTheReadGroup(t *testing.T) {
	testenv.Need(t, "busctl", "setpriv")
	e := startRead(t, policy(), Config{AdminGroup: "lockstep", ReadGroup: "nogroup"})
	if out, err := e.bus.Run("nobody", "busctl", "--system", "call", BusName, string(ObjectPath), Interface, "Report"); err != nil || !strings.HasPrefix(out, "a{sv} ") {
		t.Fatalf("Report as a reader: %v %s", err, out)
	}
	e2 := startRead(t, testenv.BusConfig{}, Config{AdminGroup: "lockstep", ReadGroup: "nogroup"})
	if out, err := e2.bus.Run("nobody", "busctl", "--system", "call", BusName, string(ObjectPath), Interface, "Reconcile"); err == nil || !strings.Contains(out, "needs root or membership of group lockstep") {
		t.Fatalf("Reconcile as a reader: %v %s", err, out)
	}
	e3 := startRead(t, policy(), Config{AdminGroup: "lockstep", ReadGroup: "lockstep-read"})
	if out, err := e3.bus.Run("nobody", "busctl", "--system", "call", BusName, string(ObjectPath), Interface, "Report"); err == nil || !strings.Contains(out, "Report needs root or membership of group lockstep-read or lockstep") {
		t.Fatalf("Report as nobody: %v %s", err, out)
	}
}

// With the shipped policy, ReportChanged (it carries the report) reaches root, not nobody.
func TestReportChangedIsNotBroadcastToEveryone(t *testing.T) {
	testenv.Need(t, "gdbus", "setpriv", "timeout")
	e := startRead(t, policy(), Config{AdminGroup: "lockstep", ReadGroup: "lockstep-read"})
	if err := e.client.AddMatchSignal(dbus.WithMatchObjectPath(ObjectPath), dbus.WithMatchMember("ReportChanged")); err != nil {
		t.Fatal(err)
	}
	sigs := make(chan *dbus.Signal, 10)
	e.client.Signal(sigs)
	mon := exec.Command("setpriv", "--reuid=nobody", "--regid=nogroup", "--init-groups", "--",
		"timeout", "4", "gdbus", "monitor", "--system", "--dest", BusName, "--object-path", string(ObjectPath))
	mon.Env = append(mon.Environ(), "DBUS_SYSTEM_BUS_ADDRESS="+e.bus.Address)
	var out strings.Builder
	mon.Stdout, mon.Stderr = &out, &out
	if err := mon.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second) // gdbus subscribed
	e.p.set("secret-free but private failure")
	if err := e.obj().Call(Interface+".Reconcile", 0).Err; err != nil {
		t.Fatal(err)
	}
	select {
	case <-sigs:
	case <-time.After(5 * time.Second):
		t.Fatal("root got no ReportChanged")
	}
	mon.Wait()
	if strings.Contains(out.String(), "ReportChanged") || strings.Contains(out.String(), "private failure") {
		t.Fatalf("nobody received the report:\n%s", out.String())
	}
	if !strings.Contains(out.String(), "PropertiesChanged") {
		t.Fatalf("nobody's monitor saw nothing at all (did it run?):\n%s", out.String())
	}
}
