package reconciler

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/lockstep/lockstep/engine"
	"github.com/lockstep/lockstep/manifest"
	"github.com/lockstep/lockstep/reconciler/plan"
	"github.com/lockstep/lockstep/reconciler/probe"
	"github.com/lockstep/lockstep/report"
	"github.com/lockstep/lockstep/spec"
)

// loopbackPort returns the published port of an httptest server (which listens on 127.0.0.1).
func loopbackPort(t *testing.T, srv *httptest.Server) manifest.Port {
	t.Helper()
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	n, _ := strconv.Atoi(port)
	return manifest.Port{HostIP: "127.0.0.1", HostPort: uint16(n), ContainerPort: 80, Protocol: "tcp"}
}

func TestProbePortHTTP(t *testing.T) {
	release := make(chan struct{})
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		switch r.URL.Path {
		case "/ok":
			w.WriteHeader(204)
		case "/moved":
			http.Redirect(w, r, "/broken", http.StatusFound) // reachable: redirects are not followed
		case "/broken":
			w.WriteHeader(500)
		case "/slow":
			<-release
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	defer close(release)
	p := loopbackPort(t, srv)
	base := "http://" + srv.Listener.Addr().String()
	for _, tt := range []struct{ path, want string }{
		{"/ok", ""},
		{"/moved", ""},
		{"/gone", "GET " + base + "/gone answered 404 Not Found"},
		{"/broken", "GET " + base + "/broken answered 500 Internal Server Error"},
		{"/slow", "GET " + base + "/slow: no answer within 1s"},
		{"", ""}, // no path: a TCP connect, which succeeds
	} {
		if got := probe.Port(context.Background(), p, tt.path); got != tt.want {
			t.Errorf("probe %q = %q, want %q", tt.path, got, tt.want)
		}
	}
	// Every GET was one request (the redirect was not followed); the TCP connect made none.
	if n := hits.Load(); n != 5 {
		t.Errorf("server saw %d requests, want 5", n)
	}
}

func TestProbePortRefused(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	_, port, _ := net.SplitHostPort(addr)
	n, _ := strconv.Atoi(port)
	p := manifest.Port{HostPort: uint16(n), ContainerPort: 80, Protocol: "tcp"} // unspecified address: probed on 127.0.0.1
	if got := probe.Port(context.Background(), p, ""); got != addr+" does not answer" {
		t.Errorf("tcp probe = %q", got)
	}
	got := probe.Port(context.Background(), p, "/health")
	if !strings.HasPrefix(got, "GET http://"+addr+"/health: ") || !strings.Contains(got, "connection refused") {
		t.Errorf("http probe = %q", got)
	}
}

func loadOne(t *testing.T, y string) *manifest.Loaded {
	t.Helper()
	a, ps := manifest.Parse("a.yaml", []byte(y))
	if len(ps) == 0 {
		ps = manifest.Validate("a.yaml", a, testRootsIn(t.TempDir()))
	}
	if len(ps) > 0 {
		t.Fatal(ps)
	}
	return &manifest.Loaded{App: *a}
}

// A probe is not part of the container: adding, changing or removing it changes neither the create
// request nor the spec hash, so it never recreates a container.
func TestProbeDoesNotChangeTheSpec(t *testing.T) {
	const base = "app:\n  id: a\n  name: a\n  version: '1'\n  container:\n    image: localhost/a:1\n    ports: [\"127.0.0.1:8080:80/tcp\"]\n"
	roots := testRootsIn("/x")
	plain := spec.DesiredFor(loadOne(t, base), roots)
	probed := spec.DesiredFor(loadOne(t, base+"    probes: [{port: 80, path: /api/health}]\n"), roots)
	if plain.Hash() != probed.Hash() {
		t.Fatalf("hash changed: %s -> %s", plain.Hash(), probed.Hash())
	}
	if diff := cmp.Diff(plain.Request, probed.Request); diff != "" {
		t.Fatal(diff)
	}
	if got := probe.Paths(probed); len(got) != 1 || got[80] != "/api/health" {
		t.Fatalf("probe paths %v", got)
	}
}

// A pass probes the path over HTTP: a 404 is unreachable with the status in the report, and past the
// grace period the app is restarted; a 200 again clears it.
func TestPassReportsHTTPStatusAndRepairs(t *testing.T) {
	var status atomic.Int64
	status.Store(200)
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/api/health" {
			hits.Add(1)
		}
		w.WriteHeader(int(status.Load()))
	}))
	defer srv.Close()
	port := loopbackPort(t, srv).HostPort
	p := &fakePodman{Images: map[string]bool{"localhost/a:1": true}}
	r := newTestReconciler(t, p, map[string]string{"a": fmt.Sprintf("    ports: [\"127.0.0.1:%d:80/tcp\"]\n    probes: [{port: 80, path: /api/health}]\n", port)})
	r.cfg.ReachGrace = time.Hour
	set, err := r.manifests.LoadDir(r.cfg.AppsDir, r.cfg.Roots)
	if err != nil || len(set.Apps) != 1 {
		t.Fatal(err, set)
	}
	d := spec.DesiredFor(set.Apps[0], r.cfg.Roots)
	p.Containers = []engine.Container{{ID: "c1", Name: "a", State: "running", Labels: d.Request.Labels}}

	rep := r.Pass(context.Background(), "test")
	if len(rep.Actions) != 0 || len(rep.Failures) != 0 || rep.Apps[0].State != "running" || hits.Load() != 1 {
		t.Fatalf("serving: %+v %+v %+v hits %d", rep.Actions, rep.Failures, rep.Apps, hits.Load())
	}
	status.Store(404)
	rep = r.Pass(context.Background(), "test")
	want := fmt.Sprintf("running but unreachable: GET http://127.0.0.1:%d/api/health answered 404 Not Found", port)
	if len(rep.Actions) != 0 || len(rep.Failures) != 1 || rep.Failures[0].Error != want || rep.Apps[0].State != report.StateUnreachable {
		t.Fatalf("after 404, within grace: %+v %+v %+v", rep.Actions, rep.Failures, rep.Apps)
	}
	if slices.Contains(p.Calls, "Stop c1") {
		t.Fatalf("repaired within grace: %v", p.Calls)
	}
	r.cfg.ReachGrace = 0
	rep = r.Pass(context.Background(), "test")
	if len(rep.Actions) != 1 || rep.Actions[0].Action != string(plan.KindRestart) || !strings.HasPrefix(rep.Actions[0].Cause, want+" (for ") {
		t.Fatalf("past grace: %+v", rep.Actions)
	}
	if !slices.Contains(p.Calls, "Stop c1") || !slices.Contains(p.Calls, "Start c1") {
		t.Fatalf("calls %v", p.Calls)
	}
	status.Store(200)
	rep = r.Pass(context.Background(), "test")
	if len(rep.Actions) != 0 || len(rep.Failures) != 0 || rep.Apps[0].State != "running" {
		t.Fatalf("serving again: %+v %+v %+v", rep.Actions, rep.Failures, rep.Apps)
	}
}

// In a stack, each container's probes apply to its own published ports only.
func TestProbePathsPerStackContainer(t *testing.T) {
	const stack = "app:\n  id: s\n  name: s\n  version: '1'\n  containers:\n    - name: db\n      image: localhost/db:1\n      ports: [\"127.0.0.1:5433:80/tcp\"]\n    - name: web\n      image: localhost/web:1\n      ports: [\"127.0.0.1:8080:80/tcp\"]\n      probes: [{port: 80, path: /x}]\n"
	ds := spec.DesiredsFor(loadOne(t, stack), &spec.Wiring{Roots: testRootsIn("/x")})
	if len(ds) != 2 {
		t.Fatalf("%d containers", len(ds))
	}
	got := map[string]map[uint16]string{}
	for _, d := range ds {
		got[d.Name()] = probe.Paths(d)
	}
	if diff := cmp.Diff(map[string]map[uint16]string{"s-db": nil, "s-web": {80: "/x"}}, got); diff != "" {
		t.Fatal(diff)
	}
	bad := strings.Replace(stack, "probes: [{port: 80", "probes: [{port: 81", 1)
	a, ps := manifest.Parse("s.yaml", []byte(bad))
	if len(ps) == 0 {
		ps = manifest.Validate("s.yaml", a, testRootsIn("/x"))
	}
	if len(ps) != 1 || ps[0].String() != "s.yaml: app.containers[1].probes[0].port: 81 is not the container port of a published TCP port in app.containers[1].ports" {
		t.Fatalf("problems %v", ps)
	}
}
