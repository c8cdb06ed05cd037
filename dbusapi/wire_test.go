package dbusapi

import (
	"bytes"
	"encoding/binary"
	"strings"
	"testing"

	"github.com/godbus/dbus/v5"
	"github.com/google/go-cmp/cmp"
)

// TestSplicedReportIsTheEncodedReport: over a real dbus-daemon, Report() from a server on a Dial
// connection (placeholder replaced by cached bytes) reaches a plain godbus client as exactly the
// a{sv} that EncodeReport makes, with the documented signature, for the same report again and
// again, and after the report changes.
func TestSplicedReportIsTheEncodedReport(t *testing.T) {
	e := start(t, policy(), "lockstep")
	if !Spliced(e.srv.conn) {
		t.Fatal("the server's connection is not a Dial connection")
	}
	hundredApps(e.p)
	want := EncodeReport(e.p.last)
	for i := 0; i < 3; i++ {
		call := e.obj().Call(Interface+".Report", 0)
		if call.Err != nil {
			t.Fatal(call.Err)
		}
		if len(call.Body) != 1 {
			t.Fatalf("reply body has %d values", len(call.Body))
		}
		got, ok := call.Body[0].(map[string]dbus.Variant)
		if !ok {
			t.Fatalf("reply is %T, want a{sv}", call.Body[0])
		}
		if d := cmp.Diff(want, got, cmp.Comparer(func(a, b dbus.Variant) bool { return a.String() == b.String() })); d != "" {
			t.Fatalf("call %d: spliced reply differs from EncodeReport (-want +got):\n%s", i, d)
		}
	}
	// A new report replaces the cached body.
	e.p.set("changed")
	<-e.b.Request("test").Done()
	var got map[string]dbus.Variant
	if err := e.obj().Call(Interface+".Report", 0).Store(&got); err != nil {
		t.Fatal(err)
	}
	rep, err := DecodeReport(got)
	if err != nil || len(rep.Apps) != 1 || len(rep.Failures) != 1 || rep.Failures[0].Error != "changed" {
		t.Fatalf("report after a pass: %+v %v", rep, err)
	}
}

// TestSplicePassesOtherMessages: only a whole message whose body is exactly a placeholder is
// changed; a placeholder naming no cached body is an error, never sent as is.
func TestSplicePassesOtherMessages(t *testing.T) {
	c := &bodyCache{entries: map[uint64]*cachedBody{}}
	enc := func(body map[string]dbus.Variant, order binary.ByteOrder) []byte {
		msg := &dbus.Message{Type: dbus.TypeMethodReply, Headers: map[dbus.HeaderField]dbus.Variant{
			dbus.FieldReplySerial: dbus.MakeVariant(uint32(7)),
			dbus.FieldSignature:   dbus.MakeVariant(dbus.SignatureOf(body)),
		}, Body: []any{body}}
		var buf bytes.Buffer
		if err := msg.EncodeTo(&buf, order); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	other := enc(map[string]dbus.Variant{"PassId": dbus.MakeVariant(uint64(3))}, binary.LittleEndian)
	if out, err := c.splice(other); err != nil || !bytes.Equal(out, other) {
		t.Fatalf("a plain message was changed: %v", err)
	}
	if out, err := c.splice(other[:20]); err != nil || !bytes.Equal(out, other[:20]) {
		t.Fatalf("a partial message was changed: %v", err)
	}
	real := map[string]dbus.Variant{"PassId": dbus.MakeVariant(uint64(9)), "Trigger": dbus.MakeVariant("x")}
	for _, order := range []binary.ByteOrder{binary.LittleEndian, binary.BigEndian} {
		tok := c.add(real, 0)
		out, err := c.splice(enc(c.placeholder(tok), order))
		if err != nil {
			t.Fatal(err)
		}
		msg, err := dbus.DecodeMessage(bytes.NewReader(out))
		if err != nil {
			t.Fatalf("%v: spliced message does not decode: %v", order, err)
		}
		var got map[string]dbus.Variant
		if err := dbus.Store(msg.Body, &got); err != nil || got["Trigger"].Value() != "x" || got["PassId"].Value() != uint64(9) {
			t.Fatalf("%v: spliced body %v %v", order, got, err)
		}
	}
	_, err := c.splice(enc(map[string]dbus.Variant{placeholderKey: dbus.MakeVariant(uint64(12345))}, binary.LittleEndian))
	if err == nil || !strings.Contains(err.Error(), "is gone") {
		t.Fatalf("a placeholder with no body: %v", err)
	}
}

// TestRetiredBodiesAreDropped: the cache keeps the current body and those still named by an unsent
// reply, nothing else.
func TestRetiredBodiesAreDropped(t *testing.T) {
	c := &bodyCache{entries: map[uint64]*cachedBody{}}
	m := map[string]dbus.Variant{"PassId": dbus.MakeVariant(uint64(1))}
	tok := c.add(m, 0)
	c.placeholder(tok) // a reply in flight
	for i := 0; i < 100; i++ {
		tok2 := c.add(m, tok)
		if i == 0 {
			if _, err := c.body(tok, 'l'); err != nil { // the in-flight reply is written
				t.Fatal(err)
			}
		}
		tok = tok2
	}
	if len(c.entries) > 2 {
		t.Fatalf("%d cached bodies after 100 reports", len(c.entries))
	}
}
