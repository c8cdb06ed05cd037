package reconciler

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/lockstep/lockstep/engine"
	"github.com/lockstep/lockstep/outcome"
)

// Every failure of a pass names its subject (an app, a stack's container, a manifest), its app and
// its class, set where it happens rather than guessed later from the message.
func TestFailuresNameTheirSubjectAndClass(t *testing.T) {
	p := &fakePodman{Images: map[string]bool{"localhost/a:1": true, "localhost/b:1": true, "localhost/db:1": true, "localhost/web:1": true},
		Fail: map[string]error{"Create a": &engine.APIError{Op: "creating container a", Status: 500, Message: "boom", Err: errors.New("boom")},
			"Start new-s-db": &engine.APIError{Op: "starting container s-db", Status: 500, Message: "no", Err: errors.New("no")}}}
	r := newTestReconciler(t, p, map[string]string{"a": "", "b": "  requires: {apps: [a]}\n"})
	stack := "app:\n  id: s\n  name: s\n  version: '1'\n  containers:\n    - name: db\n      image: localhost/db:1\n    - name: web\n      image: localhost/web:1\n"
	os.WriteFile(filepath.Join(r.cfg.AppsDir, "s.yaml"), []byte(stack), 0o644)
	bad := filepath.Join(r.cfg.AppsDir, "bad.yaml")
	os.WriteFile(bad, []byte("app:\n  id: bad\n  nme: x\n"), 0o644)
	rep := r.Pass(context.Background(), "test")
	type f struct {
		App     string
		Class   outcome.Class
		Subject outcome.Subject
		Name    string
	}
	var got []f
	for _, x := range rep.Failures {
		got = append(got, f{x.App, x.Class, x.Subject, x.Name})
	}
	want := []f{
		{"a", outcome.ClassFailed, outcome.SubjectApp, ""},
		{"b", outcome.ClassDependencyFailed, outcome.SubjectApp, ""},
		{"bad", outcome.ClassInvalidManifest, outcome.SubjectManifest, bad},
		{"s", outcome.ClassFailed, outcome.SubjectContainer, "db"},
		{"s", outcome.ClassDependencyFailed, outcome.SubjectContainer, "web"},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Fatalf("failures (-want +got):\n%s\n%+v", d, rep.Failures)
	}
	// The messages are as before: a stack container's starts with its name.
	if m := rep.Failures[3].Error; m != "db: starting: starting container s-db: podman answered 500: no" {
		t.Errorf("stack container's message %q", m)
	}

	// podman down: every app's failure is podman-unavailable.
	p.ListErr = &engine.APIError{Op: "listing containers", Err: fmt.Errorf("%w: connection refused", engine.ErrUnavailable)}
	for _, x := range r.Pass(context.Background(), "test").Failures {
		if x.Subject == outcome.SubjectApp && x.Class != outcome.ClassUnavailable {
			t.Errorf("with podman down: %+v", x)
		}
	}
	// An unreadable apps dir: the pass's failure.
	r.cfg.AppsDir = filepath.Join(t.TempDir(), "missing")
	os.WriteFile(r.cfg.AppsDir, nil, 0o644) // a file, not a dir
	fs := r.Pass(context.Background(), "test").Failures
	if len(fs) != 1 || fs[0].App != "" || fs[0].Subject != outcome.SubjectPass || fs[0].Class != outcome.ClassFailed {
		t.Errorf("unreadable apps dir: %+v", fs)
	}
}
