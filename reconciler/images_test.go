package reconciler

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/lockstep/lockstep/engine"
)

func TestPullPolicyInPass(t *testing.T) {
	p := &fakePodman{Images: map[string]bool{}}
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
		if !slices.Contains(p.Calls, want) {
			t.Fatalf("no %q in %v", want, p.Calls)
		}
	}
	// Refused before any request.
	p = &fakePodman{Images: map[string]bool{}}
	r = newTestReconciler(t, p, map[string]string{"a": ""})
	r.cfg.Registries = RegistryPolicy{Allowed: []string{"quay.io"}}
	f := failures(r.Pass(context.Background(), "test"))
	if f["a"] != "pulling image localhost/a:1: registry not allowed: image localhost/a:1 is from registry localhost, which lockstepd's --allowed-registries (quay.io) does not list" {
		t.Fatalf("failures %v", f)
	}
	for _, c := range p.Calls {
		if strings.HasPrefix(c, "Pull") || strings.HasPrefix(c, "Create") {
			t.Fatalf("calls %v", p.Calls)
		}
	}
}

func TestBuildIsPreferredToPull(t *testing.T) {
	p := &fakePodman{Images: map[string]bool{}}
	r := newTestReconciler(t, p, nil)
	y := "app:\n  id: b\n  name: b\n  version: '1'\n  container:\n    build: {context: ., tag: 'localhost/b:2'}\n"
	os.WriteFile(filepath.Join(r.cfg.AppsDir, "b.yaml"), []byte(y), 0o644)
	r.cfg.Registries = RegistryPolicy{Allowed: []string{"quay.io"}} // a build pulls nothing: not refused
	rep := r.Pass(context.Background(), "test")
	if len(rep.Failures) != 0 || !slices.Contains(p.Calls, "Build localhost/b:2") {
		t.Fatalf("failures %v calls %v", rep.Failures, p.Calls)
	}
	for _, c := range p.Calls {
		if strings.HasPrefix(c, "Pull") {
			t.Fatalf("pulled: %v", p.Calls)
		}
	}
}

func TestPurgeImagesWithFake(t *testing.T) {
	p := &fakePodman{Images: map[string]bool{}}
	r := newTestReconciler(t, p, map[string]string{"a": "", "b": "", "keep": ""})
	// keep's manifest names a's old image too.
	os.WriteFile(filepath.Join(r.cfg.AppsDir, "keep.yaml"), []byte("app:\n  id: keep\n  name: k\n  version: '1'\n  container:\n    image: localhost/a:0\n"), 0o644)
	r.recordImage("a", "localhost/a:0")
	if rep := r.Pass(context.Background(), "test"); len(rep.Failures) != 0 {
		t.Fatal(rep.Failures)
	}
	p.Fail = map[string]error{"RemoveImage localhost/b:1": &engine.APIError{Op: "removing image", Status: 200, Message: "in use", Err: engine.ErrConflict}}
	for _, id := range []string{"a", "b"} {
		if err := r.disable(id); err != nil {
			t.Fatal(err)
		}
	}
	p.Containers = nil
	p.Calls = nil
	r.Pass(context.Background(), "test")
	for _, c := range p.Calls {
		if strings.HasPrefix(c, "RemoveImage") {
			t.Fatalf("uninstall removed an image: %v", p.Calls)
		}
	}
	p.Calls = nil
	if err := r.purge(context.Background(), "a"); err != nil {
		t.Fatal(err)
	}
	if err := r.purge(context.Background(), "b"); err != nil { // in use: kept, not an error
		t.Fatal(err)
	}
	if got := strings.Join(p.Calls, ","); got != "List ,RemoveImage localhost/a:1,List ,RemoveImage localhost/b:1" {
		t.Fatalf("calls %s", got)
	}
	// A failure other than in-use or missing is an error, and the image stays recorded for a retry.
	r.recordImage("c", "localhost/c:1")
	p.Fail["RemoveImage localhost/c:1"] = &engine.APIError{Op: "removing image", Err: engine.ErrUnavailable}
	if err := r.purge(context.Background(), "c"); err == nil || !strings.Contains(err.Error(), "purging images of c") {
		t.Fatalf("purge c: %v", err)
	}
	delete(p.Fail, "RemoveImage localhost/c:1")
	r2, _ := New(r.cfg, p) // records survive a restart
	p.Calls = nil
	if err := r2.purge(context.Background(), "c"); err != nil || strings.Join(p.Calls, ",") != "List ,RemoveImage localhost/c:1" {
		t.Fatalf("retry: %v %v", err, p.Calls)
	}
}
