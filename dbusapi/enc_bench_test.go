package dbusapi

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/godbus/dbus/v5"
)

// BenchmarkEncodeReport is godbus encoding one 100-app report: once per report now (wire.go), once
// per Report() reply before.
func BenchmarkEncodeReport(b *testing.B) {
	p := &fakePasser{}
	hundredApps(p)
	for i := 0; i < b.N; i++ {
		m := EncodeReport(p.last)
		var buf bytes.Buffer
		msg := &dbus.Message{Type: dbus.TypeMethodReply, Headers: map[dbus.HeaderField]dbus.Variant{
			dbus.FieldReplySerial: dbus.MakeVariant(uint32(1)),
			dbus.FieldSignature:   dbus.MakeVariant(dbus.SignatureOf(m)),
		}, Body: []any{m}}
		if err := msg.EncodeTo(&buf, binary.LittleEndian); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCachedReply is what one Report() reply costs lockstepd once the report's body is cached:
// the placeholder, godbus encoding the small message (twice, as its transport does), and the splice
// of the cached bytes. Compare BenchmarkEncodeReport, the cost per reply before the cache.
func BenchmarkCachedReply(b *testing.B) {
	p := &fakePasser{}
	hundredApps(p)
	c := &bodyCache{entries: map[uint64]*cachedBody{}}
	tok := c.add(EncodeReport(p.last), 0)
	if _, err := c.body(tok, 'l'); err != nil { // encoded once, on the first reply
		b.Fatal(err)
	}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		m := c.placeholder(tok)
		var buf bytes.Buffer
		msg := &dbus.Message{Type: dbus.TypeMethodReply, Headers: map[dbus.HeaderField]dbus.Variant{
			dbus.FieldReplySerial: dbus.MakeVariant(uint32(1)),
			dbus.FieldSignature:   dbus.MakeVariant(dbus.SignatureOf(m)),
		}, Body: []any{m}}
		if _, err := msg.CountFds(); err != nil {
			b.Fatal(err)
		}
		if err := msg.EncodeTo(&buf, binary.LittleEndian); err != nil {
			b.Fatal(err)
		}
		out, err := c.splice(buf.Bytes())
		if err != nil || len(out) < 10000 {
			b.Fatalf("splice: %v", err)
		}
	}
}
