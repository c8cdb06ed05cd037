package dbusapi

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/godbus/dbus/v5"
)

// Report bodies are large (a 100-app report is ~20 kB with 700 variants) and godbus encodes every
// reply by reflection, twice (once to count file descriptors, once to send): about 2 ms of CPU per
// Report() call for bytes that change only once per pass. So lockstepd's bus connection runs over
// a transport of ours (godbus's generic one around our net.Conn, see Dial) that can send bytes
// encoded earlier: Report() returns a tiny placeholder a{sv} naming a cached body, and the
// connection's Write swaps the placeholder for the cached bytes, fixing the body length in the
// header. The cached bytes are what godbus's own encoder produced for the same value, once, so the
// wire format (signature a{sv}, docs/dbus-api.md) is exactly that of an uncached reply. A message
// body always starts 8-aligned, so an encoded body does not depend on the message around it.

// placeholderKey marks a placeholder body; it cannot appear in a real report (a control character).
const placeholderKey = "\x01lockstep.cached-body"

// bodyCache holds encoded bodies by token until the replies that name them are written.
type bodyCache struct {
	mu      sync.Mutex
	next    uint64
	entries map[uint64]*cachedBody
}

type cachedBody struct {
	value   map[string]dbus.Variant
	pending int       // placeholders handed out and not yet written
	retired time.Time // when a newer body replaced it; zero while current
	enc     map[byte][]byte
}

var bodies = &bodyCache{entries: map[uint64]*cachedBody{}}

// cachedEncoding is one report's a{sv} with the token of its cached body.
type cachedEncoding struct {
	value map[string]dbus.Variant
	token uint64
}

// add registers the value of a new current report and retires the old one.
func (c *bodyCache) add(m map[string]dbus.Variant, old uint64) uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.next++
	now := time.Now()
	if e := c.entries[old]; e != nil {
		e.retired = now
	}
	// A retired body goes once no reply names it; one named by a reply that was never written (its
	// connection closed) goes after ten minutes.
	for tok, e := range c.entries {
		if !e.retired.IsZero() && (e.pending == 0 || now.Sub(e.retired) > 10*time.Minute) {
			delete(c.entries, tok)
		}
	}
	c.entries[c.next] = &cachedBody{value: m, enc: map[byte][]byte{}}
	return c.next
}

// placeholder returns the reply body that stands for token's cached encoding.
func (c *bodyCache) placeholder(token uint64) map[string]dbus.Variant {
	c.mu.Lock()
	if e := c.entries[token]; e != nil {
		e.pending++
	}
	c.mu.Unlock()
	return map[string]dbus.Variant{placeholderKey: dbus.MakeVariant(token)}
}

// body returns token's encoding in the given byte order ('l' or 'B') and counts one placeholder
// written.
func (c *bodyCache) body(token uint64, order byte) ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.entries[token]
	if e == nil {
		return nil, fmt.Errorf("dbusapi: cached report body %d is gone", token)
	}
	if e.pending > 0 {
		e.pending--
	}
	if b, ok := e.enc[order]; ok {
		return b, nil
	}
	b, err := encodeBody(e.value, order)
	if err != nil {
		return nil, err
	}
	e.enc[order] = b
	return b, nil
}

func byteOrder(order byte) (binary.ByteOrder, error) {
	switch order {
	case 'l':
		return binary.LittleEndian, nil
	case 'B':
		return binary.BigEndian, nil
	}
	return nil, fmt.Errorf("dbusapi: byte order %q", order)
}

// encodeBody encodes m as a message body with godbus's own encoder.
func encodeBody(m map[string]dbus.Variant, order byte) ([]byte, error) {
	bo, err := byteOrder(order)
	if err != nil {
		return nil, err
	}
	msg := &dbus.Message{Type: dbus.TypeMethodReply, Headers: map[dbus.HeaderField]dbus.Variant{
		dbus.FieldReplySerial: dbus.MakeVariant(uint32(1)),
		dbus.FieldSignature:   dbus.MakeVariant(dbus.SignatureOf(m)),
	}, Body: []any{m}}
	var buf bytes.Buffer
	if err := msg.EncodeTo(&buf, bo); err != nil {
		return nil, err
	}
	off, n, ok := bodyOf(buf.Bytes())
	if !ok {
		return nil, errors.New("dbusapi: cannot find the body of an encoded message")
	}
	return append([]byte(nil), buf.Bytes()[off:off+n]...), nil
}

// bodyOf returns the offset and length of the body of the whole message p.
func bodyOf(p []byte) (off, n int, ok bool) {
	if len(p) < 16 {
		return 0, 0, false
	}
	bo, err := byteOrder(p[0])
	if err != nil {
		return 0, 0, false
	}
	n = int(bo.Uint32(p[4:8]))
	fields := int(bo.Uint32(p[12:16]))
	off = (16 + fields + 7) &^ 7
	if n < 0 || fields < 0 || off+n != len(p) {
		return 0, 0, false
	}
	return off, n, true
}

// placeholderPrefix is the encoding of a placeholder body up to its token (the last 8 bytes).
var placeholderPrefix = func() map[byte][]byte {
	out := map[byte][]byte{}
	for _, o := range []byte{'l', 'B'} {
		b, err := encodeBody(map[string]dbus.Variant{placeholderKey: dbus.MakeVariant(uint64(0))}, o)
		if err != nil {
			panic(err)
		}
		out[o] = b[:len(b)-8]
	}
	return out
}()

// splice returns the message to send for p: p itself, or p with its placeholder body replaced by the
// cached body it names.
func (c *bodyCache) splice(p []byte) ([]byte, error) {
	off, n, ok := bodyOf(p)
	if !ok {
		return p, nil
	}
	prefix := placeholderPrefix[p[0]]
	if n != len(prefix)+8 || !bytes.Equal(p[off:off+len(prefix)], prefix) {
		return p, nil
	}
	bo, _ := byteOrder(p[0])
	body, err := c.body(bo.Uint64(p[off+len(prefix):]), p[0])
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, off+len(body))
	out = append(out, p[:off]...)
	bo.PutUint32(out[4:8], uint32(len(body)))
	return append(out, body...), nil
}

// splicingConn is the byte stream under lockstepd's bus connection. godbus writes each message with
// one Write, serialized by its own lock.
type splicingConn struct {
	net.Conn
	r     *bufio.Reader
	cache *bodyCache
}

func (s *splicingConn) Read(p []byte) (int, error) { return s.r.Read(p) }

func (s *splicingConn) Write(p []byte) (int, error) {
	out, err := s.cache.splice(p)
	if err != nil {
		return 0, err
	}
	if _, err := s.Conn.Write(out); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Dial connects to the bus at address ("system", "session" or a D-Bus address), authenticates and
// says Hello, like dbus.Connect, over a transport that sends cached report bodies. Addresses other
// than unix:path= and unix:abstract= fall back to godbus's own transports (and plain encoding).
func Dial(address string, opts ...dbus.ConnOption) (*dbus.Conn, error) {
	switch address {
	case "system":
		address = os.Getenv("DBUS_SYSTEM_BUS_ADDRESS")
		if address == "" {
			address = "unix:path=/var/run/dbus/system_bus_socket"
		}
	case "session":
		address = os.Getenv("DBUS_SESSION_BUS_ADDRESS")
		if address == "" {
			return nil, errors.New("DBUS_SESSION_BUS_ADDRESS is not set")
		}
	}
	var nc net.Conn
	var errs []error
	for _, a := range strings.Split(address, ";") {
		path, ok := unixPath(a)
		if !ok {
			continue
		}
		c, err := net.Dial("unix", path)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		nc = c
		break
	}
	if nc == nil {
		if len(errs) > 0 {
			return nil, errors.Join(errs...)
		}
		return dbus.Connect(address, opts...)
	}
	sc := &splicingConn{Conn: nc, r: bufio.NewReaderSize(nc, 64<<10), cache: bodies}
	conn, err := dbus.NewConn(sc, opts...)
	if err != nil {
		nc.Close()
		return nil, err
	}
	if err := conn.Auth(nil); err != nil {
		conn.Close()
		return nil, err
	}
	if err := conn.Hello(); err != nil {
		conn.Close()
		return nil, err
	}
	spliced.Store(conn, true)
	go func() { <-conn.Context().Done(); spliced.Delete(conn) }()
	return conn, nil
}

// spliced holds the open connections made by Dial.
var spliced sync.Map

// Spliced tells whether conn was made by Dial, so replies on it may carry placeholders.
func Spliced(conn *dbus.Conn) bool { _, ok := spliced.Load(conn); return ok }

// unixPath returns the socket of a unix:path= or unix:abstract= address entry.
func unixPath(entry string) (string, bool) {
	rest, ok := strings.CutPrefix(entry, "unix:")
	if !ok {
		return "", false
	}
	for _, kv := range strings.Split(rest, ",") {
		k, v, _ := strings.Cut(kv, "=")
		v, err := url.PathUnescape(v)
		if err != nil {
			return "", false
		}
		switch k {
		case "path":
			return v, true
		case "abstract":
			return "@" + v, true
		}
	}
	return "", false
}
