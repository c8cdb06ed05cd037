package podman

import (
	"context"
	"net"
	"net/http"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// endingEvents is an HTTP server on a real unix socket that speaks the two endpoints a watch uses: the
// ping and an event stream that sends one event and ends, as podman's does when the service stops.
// (Restarting a real podman service 100 times would take minutes; what leaked was the bindings'
// client side of an ended stream, which this exercises as podman would.)
func endingEvents(t *testing.T) (url string, streams *atomic.Int64) {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "podman.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	streams = &atomic.Int64{}
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/_ping") {
			w.Header().Set("Libpod-API-Version", "4.3.1")
			w.Write([]byte("OK"))
			return
		}
		if !strings.HasSuffix(r.URL.Path, "/events") {
			http.NotFound(w, r)
			return
		}
		streams.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"Type":"container","Action":"died","Actor":{"ID":"x","Attributes":{"name":"a","io.lockstep.app":"a"}}}` + "\n"))
	})
	srv := &http.Server{Handler: mux}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return "unix://" + sock, streams
}

// TestWatchReconnectsWithoutLeaking: 100 streams that end by themselves, each followed by a reconnect
// and a call of reconnected; the goroutine count does not grow with them. Before issue 15 the
// bindings' goroutine that closes the body on a stop waited forever for a stream that ended by
// itself: one goroutine leaked per reconnect.
func TestWatchReconnectsWithoutLeaking(t *testing.T) {
	url, streams := endingEvents(t)
	c := New(url)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var events, reconnects atomic.Int64
	var at10 int
	ready := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.Watch(ctx, func(e Event) {
			if e.Action == "died" && e.App == "a" {
				events.Add(1)
			}
		}, func() {
			switch reconnects.Add(1) {
			case 10:
				runtime.GC()
				at10 = runtime.NumGoroutine()
			case 110:
				close(ready)
			}
		})
	}()
	select {
	case <-ready:
	case <-time.After(60 * time.Second):
		t.Fatalf("%d reconnects in 60 s", reconnects.Load())
	}
	// Let the last stream's goroutines settle; then count.
	var now int
	for i := 0; i < 50; i++ {
		runtime.GC()
		if now = runtime.NumGoroutine(); now <= at10+5 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	<-done
	if now > at10+5 {
		t.Fatalf("goroutines grew from %d to %d over 100 reconnects", at10, now)
	}
	if streams.Load() < 110 || events.Load() < 100 {
		t.Fatalf("%d streams, %d events", streams.Load(), events.Load())
	}
}

// TestWatchFirstStreamAfterFailureCallsReconnected: podman down when the watch starts, then up: the
// first stream that opens calls reconnected (the start-up pass failed and must be run again), within
// the watch's backoff of podman coming up. A first attempt that succeeds does not.
func TestWatchFirstStreamAfterFailureCallsReconnected(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "podman.sock")
	c := New("unix://" + sock)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	got := make(chan time.Time, 100)
	go c.Watch(ctx, func(Event) {}, func() { got <- time.Now() })
	time.Sleep(3 * time.Second) // several failed attempts: the backoff has grown
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	up := time.Now()
	mux := http.NewServeMux()
	block := make(chan struct{})
	defer close(block)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/_ping") {
			w.Header().Set("Libpod-API-Version", "4.3.1")
			return
		}
		w.WriteHeader(200)
		w.(http.Flusher).Flush()
		select { // a stream that stays open
		case <-block:
		case <-r.Context().Done():
		}
	})
	srv := &http.Server{Handler: mux}
	go srv.Serve(l)
	defer srv.Close()
	select {
	case at := <-got:
		if d := at.Sub(up); d > 2*time.Second {
			t.Fatalf("reconnected %s after podman came up, want within 2 s", d)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the first stream after podman came up did not call reconnected")
	}

	// Up from the start: no call.
	url, _ := endingEventsOpen(t)
	c2 := New(url)
	got2 := make(chan struct{}, 1)
	go c2.Watch(ctx, func(Event) {}, func() { got2 <- struct{}{} })
	select {
	case <-got2:
		t.Fatal("a first stream that opened at once called reconnected")
	case <-time.After(time.Second):
	}
}

// endingEventsOpen is a service whose event stream stays open.
func endingEventsOpen(t *testing.T) (string, func()) {
	sock := filepath.Join(t.TempDir(), "podman.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	block := make(chan struct{})
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/_ping") {
			w.Header().Set("Libpod-API-Version", "4.3.1")
			return
		}
		w.WriteHeader(200)
		w.(http.Flusher).Flush()
		select {
		case <-block:
		case <-r.Context().Done():
		}
	})
	srv := &http.Server{Handler: mux}
	go srv.Serve(l)
	stop := func() { close(block); srv.Close() }
	t.Cleanup(stop)
	return "unix://" + sock, stop
}
