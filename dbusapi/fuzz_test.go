package dbusapi

import (
	"bytes"
	"encoding/binary"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/godbus/dbus/v5"
	"github.com/google/go-cmp/cmp"

	"github.com/lockstep/lockstep/report"
)

// clean is what a string becomes on the bus: valid UTF-8 without NUL (D-Bus forbids both).
func clean(s string) string {
	return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "\uFFFD")
}

// FuzzReportRoundTrip: any report (any bytes in any text field: app ids from file names, errors from
// podman and the kernel) encodes to a valid D-Bus message, through the cached-body path lockstepd
// uses, and decodes back to the same report, with text made valid for D-Bus and times at
// microsecond precision. Before, one invalid UTF-8 byte in a failure made every Report() fail.
func FuzzReportRoundTrip(f *testing.F) {
	f.Add(uint64(7), "timer", int64(1700000000123456), "web", "install", "no container", "bad", "bad.yaml: app.nme: unknown key", "running", "sha256:abc", "2026-01-01T00:00:00Z")
	f.Add(uint64(0), "", int64(0), "", "", "", "", "", "", "", "")
	f.Add(uint64(1<<63), "dbus,install", int64(-5), "\xff\xfe.yaml", "start", "a\x00b", "x", "open /etc/lockstep/apps.d/\xff: permission denied", "exited", "\u00e9\u2603", "")
	f.Fuzz(func(t *testing.T, pass uint64, trigger string, usec int64, app, action, cause, fapp, ferr, state, image, next string) {
		in := &report.Report{PassID: pass, Trigger: trigger, CompanionMode: state,
			Actions:      []report.ActionRec{{App: app, Action: action, Cause: cause}},
			Failures:     []report.Failure{{App: fapp, Error: ferr}, {App: app, Error: cause}},
			Apps:         []report.AppStatus{{ID: app, State: state, Health: cause, Image: image, ContainerID: ferr, LastAction: action, NextAttempt: next}},
			Companions:   []report.AppStatus{{ID: fapp, State: state}},
			HostProblems: []report.HostProblem{{Code: action, Message: cause, Fix: ferr, Apps: []string{app, fapp}}},
		}
		if usec > 0 {
			in.StartedAt = time.UnixMicro(usec).UTC()
			in.FinishedAt = in.StartedAt.Add(time.Duration(pass%1000) * time.Microsecond)
		}
		m := EncodeReport(in)
		c := &bodyCache{entries: map[uint64]*cachedBody{}}
		tok := c.add(m, 0)
		msg := &dbus.Message{Type: dbus.TypeMethodReply, Headers: map[dbus.HeaderField]dbus.Variant{
			dbus.FieldReplySerial: dbus.MakeVariant(uint32(9)),
			dbus.FieldSignature:   dbus.MakeVariant(dbus.SignatureOf(m)),
		}, Body: []any{c.placeholder(tok)}}
		var buf bytes.Buffer
		if err := msg.EncodeTo(&buf, binary.LittleEndian); err != nil {
			t.Fatalf("encoding the placeholder: %v", err)
		}
		wire, err := c.splice(buf.Bytes())
		if err != nil {
			t.Fatalf("encoding the report: %v", err)
		}
		back, err := dbus.DecodeMessage(bytes.NewReader(wire))
		if err != nil {
			t.Fatalf("the message does not decode: %v", err)
		}
		if sig := back.Headers[dbus.FieldSignature].Value().(dbus.Signature).String(); sig != ReportSignature {
			t.Fatalf("signature %s", sig)
		}
		var decoded map[string]dbus.Variant
		if err := dbus.Store(back.Body, &decoded); err != nil {
			t.Fatal(err)
		}
		out, err := DecodeReport(decoded)
		if err != nil {
			t.Fatal(err)
		}
		want := &report.Report{PassID: pass, Trigger: clean(trigger), CompanionMode: clean(state), StartedAt: in.StartedAt, FinishedAt: in.FinishedAt,
			Actions:      []report.ActionRec{{App: clean(app), Action: clean(action), Cause: clean(cause)}},
			Failures:     []report.Failure{{App: clean(fapp), Error: clean(ferr)}, {App: clean(app), Error: clean(cause)}},
			Apps:         []report.AppStatus{{ID: clean(app), State: clean(state), Health: clean(cause), Image: clean(image), ContainerID: clean(ferr), LastAction: clean(action), NextAttempt: clean(next)}},
			Companions:   []report.AppStatus{{ID: clean(fapp), State: clean(state)}},
			HostProblems: []report.HostProblem{{Code: clean(action), Message: clean(cause), Fix: clean(ferr), Apps: []string{clean(app), clean(fapp)}}},
		}
		if d := cmp.Diff(want, out); d != "" {
			t.Fatalf("round trip (-want +got):\n%s", d)
		}
		for _, v := range decoded {
			if s, ok := v.Value().(string); ok && !utf8.ValidString(s) {
				t.Fatalf("invalid UTF-8 on the wire: %q", s)
			}
		}
	})
}

// FuzzDecodeReport: whatever a bus delivers as a message, decoding it as a report never panics
// (lockstepctl decodes what the bus gives it).
func FuzzDecodeReport(f *testing.F) {
	for _, r := range []*report.Report{nil, {PassID: 3, Trigger: "x", Apps: []report.AppStatus{{ID: "a", State: "running"}}, Failures: []report.Failure{{App: "a", Error: "e"}}}} {
		b, err := encodeBody(EncodeReport(r), 'l')
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		// A method reply with this body and signature a{sv}.
		msg := &dbus.Message{Type: dbus.TypeMethodReply, Headers: map[dbus.HeaderField]dbus.Variant{
			dbus.FieldReplySerial: dbus.MakeVariant(uint32(1)),
			dbus.FieldSignature:   dbus.MakeVariant(dbus.SignatureOf(map[string]dbus.Variant{})),
		}}
		var hdr bytes.Buffer
		if err := msg.EncodeTo(&hdr, binary.LittleEndian); err != nil {
			t.Fatal(err)
		}
		raw := append([]byte(nil), hdr.Bytes()...)
		binary.LittleEndian.PutUint32(raw[4:8], uint32(len(body)))
		raw = append(raw, body...)
		back, err := dbus.DecodeMessage(bytes.NewReader(raw))
		if err != nil {
			return
		}
		// As lockstepctl takes a reply: the body's a{sv} as godbus decoded it (no Store).
		if len(back.Body) != 1 {
			return
		}
		m, ok := back.Body[0].(map[string]dbus.Variant)
		if !ok {
			return
		}
		DecodeReport(m)
	})
}
