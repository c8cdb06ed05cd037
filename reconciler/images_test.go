package reconciler

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	logtest "github.com/sirupsen/logrus/hooks/test"
)

func TestRegistryPolicy(t *testing.T) {
	for _, tt := range []struct {
		name     string
		pol      RegistryPolicy
		ref      string
		manifest []string // registry.insecure
		tls      bool
		err      string
	}{
		{"zero policy allows all", RegistryPolicy{}, "quay.io/a/b:1", nil, true, ""},
		{"zero policy: manifest alone is not enough", RegistryPolicy{}, "10.0.0.1:5000/a:1", []string{"10.0.0.1:5000"}, true, ""},
		{"operator alone is not enough", RegistryPolicy{Insecure: []string{"10.0.0.1:5000"}}, "10.0.0.1:5000/a:1", nil, true, ""},
		{"both: insecure", RegistryPolicy{Insecure: []string{"10.0.0.1:5000"}}, "10.0.0.1:5000/a:1", []string{"10.0.0.1:5000"}, false, ""},
		{"port must match", RegistryPolicy{Insecure: []string{"10.0.0.1"}}, "10.0.0.1:5000/a:1", []string{"10.0.0.1:5000"}, true, ""},
		{"allowed", RegistryPolicy{Allowed: []string{"quay.io"}}, "quay.io/a/b:1", nil, true, ""},
		{"docker hub normalized", RegistryPolicy{Allowed: []string{"docker.io"}}, "nginx:1.27", nil, true, ""},
		{"insecure entries are allowed", RegistryPolicy{Allowed: []string{"quay.io"}, Insecure: []string{"10.0.0.1:5000"}}, "10.0.0.1:5000/a:1", nil, true, ""},
		{"not allowed", RegistryPolicy{Allowed: []string{"quay.io", "ghcr.io"}}, "docker.io/library/nginx:1.27", nil, true,
			"registry not allowed: image docker.io/library/nginx:1.27 is from registry docker.io, which lockstepd's --allowed-registries (quay.io,ghcr.io) does not list"},
		{"no subdomain match", RegistryPolicy{Allowed: []string{"example.org"}}, "reg.example.org/a:1", nil, true, "registry not allowed"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tls, err := tt.pol.check(tt.ref, tt.manifest)
			if tt.err == "" {
				if err != nil || tls != tt.tls {
					t.Fatalf("tls %v err %v, want tls %v", tls, err, tt.tls)
				}
				return
			}
			if !errors.Is(err, ErrRegistryNotAllowed) || !strings.HasPrefix(err.Error(), tt.err) {
				t.Fatalf("err %v, want %q", err, tt.err)
			}
		})
	}
}

func TestPullPolicyInPass(t *testing.T) {
	p := &fakePodman{images: map[string]bool{}}
	r := newTestReconciler(t, p, map[string]string{
		"a": "  registry: {insecure: [\"localhost\"]}\n", // image localhost/a:1
		"b": "",
		"c": "  registry: {insecure: [\"localhost\"]}\n",
	})
	r.cfg.Registries = RegistryPolicy{Allowed: []string{"quay.io"}, Insecure: []string{"localhost"}}
	rep := r.Pass(context.Background(), "test")
	if len(rep.Failures) != 0 {
		t.Fatal(rep.Failures)
	}
	for _, want := range []string{"Pull localhost/a:1 tls=false", "Pull localhost/b:1 tls=true", "Pull localhost/c:1 tls=false"} {
		if !slices.Contains(p.calls, want) {
			t.Fatalf("no %q in %v", want, p.calls)
		}
	}
	// Refused before any request.
	p = &fakePodman{images: map[string]bool{}}
	r = newTestReconciler(t, p, map[string]string{"a": ""})
	r.cfg.Registries = RegistryPolicy{Allowed: []string{"quay.io"}}
	f := failures(r.Pass(context.Background(), "test"))
	if f["a"] != "pulling image localhost/a:1: registry not allowed: image localhost/a:1 is from registry localhost, which lockstepd's --allowed-registries (quay.io) does not list" {
		t.Fatalf("failures %v", f)
	}
	for _, c := range p.calls {
		if strings.HasPrefix(c, "Pull") || strings.HasPrefix(c, "Create") {
			t.Fatalf("calls %v", p.calls)
		}
	}
}

func TestBuildIsPreferredToPull(t *testing.T) {
	p := &fakePodman{images: map[string]bool{}}
	r := newTestReconciler(t, p, nil)
	y := "app:\n  id: b\n  name: b\n  version: '1'\n  container:\n    build: {context: ., tag: 'localhost/b:2'}\n"
	os.WriteFile(filepath.Join(r.cfg.AppsDir, "b.yaml"), []byte(y), 0o644)
	r.cfg.Registries = RegistryPolicy{Allowed: []string{"quay.io"}} // a build pulls nothing: not refused
	rep := r.Pass(context.Background(), "test")
	if len(rep.Failures) != 0 || !slices.Contains(p.calls, "Build localhost/b:2") {
		t.Fatalf("failures %v calls %v", rep.Failures, p.calls)
	}
	for _, c := range p.calls {
		if strings.HasPrefix(c, "Pull") {
			t.Fatalf("pulled: %v", p.calls)
		}
	}
}

func TestPullProgressRate(t *testing.T) {
	log, hook := logtest.NewNullLogger()
	log.SetLevel(logrus.DebugLevel)
	pp := newPullProgress(log, time.Hour)
	fmt.Fprint(pp, "Trying to pull x...\nGetting image source signatures\nCopying blob sha256:1\r\nCopying blob ")
	fmt.Fprint(pp, "sha256:2\n\nWriting manifest")
	pp.flush()
	var got []string
	for _, e := range hook.AllEntries() {
		got = append(got, e.Level.String()+" "+e.Message)
	}
	want := []string{"info pull: Trying to pull x...", "debug pull: Getting image source signatures", "debug pull: Copying blob sha256:1",
		"debug pull: Copying blob sha256:2", "debug pull: Writing manifest"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") || pp.lines != 5 {
		t.Fatalf("got %q (%d lines)", got, pp.lines)
	}
	// With no minimum interval every line is at Info.
	hook.Reset()
	pp = newPullProgress(log, 0)
	fmt.Fprint(pp, "a\nb\nc\n")
	for _, e := range hook.AllEntries() {
		if e.Level != logrus.InfoLevel {
			t.Fatalf("%+v", e)
		}
	}
	if len(hook.AllEntries()) != 3 {
		t.Fatal(hook.AllEntries())
	}
}

func TestPurgeImagesWithFake(t *testing.T) {
	p := &fakePodman{images: map[string]bool{}}
	r := newTestReconciler(t, p, map[string]string{"a": "", "b": "", "keep": ""})
	// keep's manifest names a's old image too.
	os.WriteFile(filepath.Join(r.cfg.AppsDir, "keep.yaml"), []byte("app:\n  id: keep\n  name: k\n  version: '1'\n  container:\n    image: localhost/a:0\n"), 0o644)
	r.recordImage("a", "localhost/a:0")
	if rep := r.Pass(context.Background(), "test"); len(rep.Failures) != 0 {
		t.Fatal(rep.Failures)
	}
	p.fail = map[string]error{"RemoveImage localhost/b:1": &APIError{Op: "removing image", Status: 200, Message: "in use", Err: ErrConflict}}
	for _, id := range []string{"a", "b"} {
		if err := r.disable(id); err != nil {
			t.Fatal(err)
		}
	}
	p.containers = nil
	p.calls = nil
	r.Pass(context.Background(), "test")
	for _, c := range p.calls {
		if strings.HasPrefix(c, "RemoveImage") {
			t.Fatalf("uninstall removed an image: %v", p.calls)
		}
	}
	p.calls = nil
	if err := r.purge(context.Background(), "a"); err != nil {
		t.Fatal(err)
	}
	if err := r.purge(context.Background(), "b"); err != nil { // in use: kept, not an error
		t.Fatal(err)
	}
	if got := strings.Join(p.calls, ","); got != "List ,RemoveImage localhost/a:1,List ,RemoveImage localhost/b:1" {
		t.Fatalf("calls %s", got)
	}
	// A failure other than in-use or missing is an error, and the image stays recorded for a retry.
	r.recordImage("c", "localhost/c:1")
	p.fail["RemoveImage localhost/c:1"] = &APIError{Op: "removing image", Err: ErrUnavailable}
	if err := r.purge(context.Background(), "c"); err == nil || !strings.Contains(err.Error(), "purging images of c") {
		t.Fatalf("purge c: %v", err)
	}
	delete(p.fail, "RemoveImage localhost/c:1")
	r2, _ := New(r.cfg, p) // records survive a restart
	p.calls = nil
	if err := r2.purge(context.Background(), "c"); err != nil || strings.Join(p.calls, ",") != "List ,RemoveImage localhost/c:1" {
		t.Fatalf("retry: %v %v", err, p.calls)
	}
}
