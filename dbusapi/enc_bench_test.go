package dbusapi

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/godbus/dbus/v5"
)

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
