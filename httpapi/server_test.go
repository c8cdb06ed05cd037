package httpapi

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/lockstep/lockstep/ops"
	"github.com/lockstep/lockstep/report"
)

type backend struct{}

func (backend) Request(string) *ops.Ticket { return nil }
func (backend) Last() *report.Report {
	return &report.Report{PassID: 3, Failures: []report.Failure{{App: "web", Error: "GET / answered 500 \x1b[2J"}}}
}

// serve starts the API on a real unix socket (the caller is root: it may read).
func serve(t *testing.T) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "api.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	s := New(backend{}, Groups{Admin: "lockstep", Read: "lockstep-read"}, nil, logrus.New())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Serve(ctx, l); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return sock
}

func get(t *testing.T, c net.Conn) (string, error) {
	t.Helper()
	if _, err := io.WriteString(c, "GET /v1/report HTTP/1.1\r\nHost: lockstep\r\n\r\n"); err != nil {
		return "", err
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.Status + "\n" + string(b), err
}

// An idle keep-alive connection is closed after IdleTimeout, not held forever.
func TestIdleConnectionsAreClosed(t *testing.T) {
	old := IdleTimeout
	IdleTimeout = 200 * time.Millisecond
	defer func() { IdleTimeout = old }()
	c, err := net.Dial("unix", serve(t))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	out, err := get(t, c)
	if err != nil || !strings.HasPrefix(out, "200") || strings.Contains(out, `\u001b`) || !strings.Contains(out, `"pass_id": 3`) {
		t.Fatalf("GET: %v %q", err, out)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	start := time.Now()
	if n, err := c.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("idle connection: read %d, %v (want EOF)", n, err)
	}
	if time.Since(start) > 3*time.Second {
		t.Fatalf("closed after %s", time.Since(start))
	}
}

// Past MaxConns open connections, a new one waits until one closes.
func TestConnectionsAreCapped(t *testing.T) {
	old := MaxConns
	MaxConns = 4
	defer func() { MaxConns = old }()
	sock := serve(t)
	var held []net.Conn
	for range 4 {
		c, err := net.Dial("unix", sock)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		held = append(held, c)
	}
	extra, err := net.Dial("unix", sock) // the kernel's backlog takes it; lockstepd does not accept it
	if err != nil {
		t.Fatal(err)
	}
	defer extra.Close()
	got := make(chan string, 1)
	go func() { out, _ := get(t, extra); got <- out }()
	select {
	case out := <-got:
		t.Fatalf("a fifth connection was served: %q", out)
	case <-time.After(500 * time.Millisecond):
	}
	held[0].Close()
	select {
	case out := <-got:
		if !strings.HasPrefix(out, "200") {
			t.Fatalf("GET: %q", out)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("not served after a connection closed")
	}
}
