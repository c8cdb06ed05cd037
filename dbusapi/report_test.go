package dbusapi

import (
	"encoding/binary"
	"strings"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"
	"github.com/google/go-cmp/cmp"

	"github.com/lockstep/lockstep/outcome"
	"github.com/lockstep/lockstep/reconciler/plan"
	"github.com/lockstep/lockstep/report"
)

func TestDecodeReportRoundTrip(t *testing.T) {
	start := time.Date(2026, 3, 4, 5, 6, 7, 123456000, time.UTC)
	in := &report.Report{
		PassID: 42, Trigger: "dbus,install", StartedAt: start, FinishedAt: start.Add(1500 * time.Millisecond),
		Actions: []report.ActionRec{{App: "web", Action: "install", Cause: "no container"},
			{App: "node", Action: string(plan.KindRollback), Cause: "new spec 5412503cb2b0 not healthy after 9s: health check failing (2 in a row); back to 13d3008977e5"}},
		Failures: []report.Failure{{App: "bad", Error: "bad.yaml: app.nme: unknown key", Class: outcome.ClassInvalidManifest, Subject: outcome.SubjectManifest, Name: "/etc/lockstep/apps.d/bad.yaml"},
			{App: "web", Error: "waiting for /x (a mount source) to exist", Class: outcome.ClassWaiting, Subject: outcome.SubjectCompanion, Name: "web-ui"},
			{App: "", Error: "apps dir unreadable"}},
		Apps: []report.AppStatus{{ID: "web", State: "running", Health: "healthy", Image: "x:1", ContainerID: "abc", LastAction: "install"}, {ID: "bad", State: "invalid"},
			{ID: "mempool", State: "running", Health: "healthy", LastAction: "recreate", Containers: []report.ContainerStatus{
				{Name: "db", State: "running", Health: "healthy", Image: "db:1", ContainerID: "d1"},
				{Name: "api", State: "running", Health: "none", Image: "api:1", ContainerID: "a1", LastAction: "recreate"}}},
			{ID: "node", State: report.StateRolledBack, Health: "healthy", Image: "x:1", ContainerID: "def", LastAction: "rollback"}},
		Companions:    []report.AppStatus{{ID: "web-ui", App: "web", State: "running"}},
		CompanionMode: "quadlet",
		HostProblems: []report.HostProblem{{Code: "netavark-no-aardvark", Message: "no aardvark-dns", Fix: "install aardvark-dns (Debian)", Apps: []string{"mempool", "web"}},
			{Code: "kube-no-catatonit", Message: "no catatonit", Fix: "install catatonit (Debian)", Apps: []string{}}},
	}
	// Through a real D-Bus message encoding, as a client receives it.
	out, err := DecodeReport(marshalled(t, EncodeReport(in)))
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(in, out); d != "" {
		t.Fatalf("round trip (-in +out):\n%s", d)
	}
	// Times keep microseconds only.
	in.FinishedAt = in.FinishedAt.Add(999)
	out, _ = DecodeReport(EncodeReport(in))
	if !out.FinishedAt.Equal(in.FinishedAt.Truncate(time.Microsecond)) {
		t.Fatalf("finished %v", out.FinishedAt)
	}
}

func TestDecodeEmptyAndNil(t *testing.T) {
	out, err := DecodeReport(marshalled(t, EncodeReport(nil)))
	if err != nil {
		t.Fatal(err)
	}
	want := &report.Report{Actions: []report.ActionRec{}, Failures: []report.Failure{}, Apps: []report.AppStatus{}, Companions: []report.AppStatus{}}
	if d := cmp.Diff(want, out); d != "" {
		t.Fatalf("pass 0 (-want +got):\n%s", d)
	}
	if !out.StartedAt.IsZero() || !out.FinishedAt.IsZero() {
		t.Fatal("zero times not zero")
	}
	// Unknown keys are ignored; missing ones leave fields empty.
	out, err = DecodeReport(map[string]dbus.Variant{"PassId": dbus.MakeVariant(uint64(3)), "Future": dbus.MakeVariant("x")})
	if err != nil || out.PassID != 3 {
		t.Fatalf("%+v %v", out, err)
	}
}

func TestDecodeWrongType(t *testing.T) {
	_, err := DecodeReport(map[string]dbus.Variant{"PassId": dbus.MakeVariant("seven")})
	if err == nil || !strings.Contains(err.Error(), "PassId has type s, want t") {
		t.Fatalf("err %v", err)
	}
	_, err = DecodeReport(map[string]dbus.Variant{"Apps": dbus.MakeVariant([]map[string]dbus.Variant{{"State": dbus.MakeVariant(uint32(1))}})})
	if err == nil || !strings.Contains(err.Error(), "Apps[0].State") {
		t.Fatalf("err %v", err)
	}
}

// marshalled sends m through the D-Bus wire format and back, as a method reply body would be.
func marshalled(t *testing.T, m map[string]dbus.Variant) map[string]dbus.Variant {
	t.Helper()
	msg := &dbus.Message{Type: dbus.TypeSignal, Headers: map[dbus.HeaderField]dbus.Variant{
		dbus.FieldPath:      dbus.MakeVariant(ObjectPath),
		dbus.FieldInterface: dbus.MakeVariant(Interface),
		dbus.FieldMember:    dbus.MakeVariant("ReportChanged"),
		dbus.FieldSignature: dbus.MakeVariant(dbus.SignatureOf(m)),
	}, Body: []any{m}}
	var buf strings.Builder
	if err := msg.EncodeTo(&buf, binary.LittleEndian); err != nil {
		t.Fatal(err)
	}
	back, err := dbus.DecodeMessage(strings.NewReader(buf.String()))
	if err != nil {
		t.Fatal(err)
	}
	var out map[string]dbus.Variant
	if err := dbus.Store(back.Body, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// Reply values of unexpected types, including a variant holding a map keyed by signatures (which
// makes godbus's Store panic in some paths; found by fuzzing), are errors, not a crash of the client.
func TestDecodeReportSurvivesGodbusStorePanics(t *testing.T) {
	odd := dbus.MakeVariantWithSignature(map[dbus.Signature]dbus.Variant{dbus.ParseSignatureMust("s"): dbus.MakeVariant("x")}, dbus.ParseSignatureMust("a{gv}"))
	for _, key := range []string{"Actions", "Apps"} {
		v := dbus.MakeVariantWithSignature([]any{odd}, dbus.ParseSignatureMust("av"))
		func() {
			defer func() {
				if p := recover(); p != nil {
					t.Fatalf("%s: DecodeReport panicked: %v", key, p)
				}
			}()
			if _, err := DecodeReport(map[string]dbus.Variant{key: v}); err == nil {
				t.Fatalf("%s of type av decoded without an error", key)
			}
		}()
	}
	apps := dbus.MakeVariantWithSignature([]map[string]dbus.Variant{{"Id": dbus.MakeVariant("a"), "Containers": dbus.MakeVariantWithSignature([]any{odd}, dbus.ParseSignatureMust("av"))}}, dbus.ParseSignatureMust("aa{sv}"))
	if _, err := DecodeReport(map[string]dbus.Variant{"Apps": apps}); err == nil {
		t.Fatal("odd Containers decoded without an error")
	}
}
