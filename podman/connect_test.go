package podman

import (
	"context"
	"errors"
	"net"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/lockstep/lockstep/engine"
)

// A podman that accepts and never answers: every call returns by its own deadline, also one waiting
// for another caller's connect; the connection is tried again afterwards. Before issue 15 the connect
// ping ran under context.WithoutCancel holding the client's mutex: the first call hung for good, and
// every other with it.
func TestHungServiceCallsEndByTheirDeadline(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "hung.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	defer func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	}()
	c := New("unix://" + sock)
	var wg sync.WaitGroup
	for _, d := range []time.Duration{300 * time.Millisecond, 600 * time.Millisecond} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), d)
			defer cancel()
			t0 := time.Now()
			_, err := c.List(ctx)
			if took := time.Since(t0); took > d+2*time.Second {
				t.Errorf("List with a %s deadline returned after %s", d, took)
			}
			if !errors.Is(err, engine.ErrUnavailable) {
				t.Errorf("List: %v, want unavailable", err)
			}
		}()
	}
	wg.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if _, err := c.List(ctx); err == nil {
		t.Fatal("a call to a hung service succeeded")
	}
}
