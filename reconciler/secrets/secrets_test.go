package secrets

import (
	"os"
	"path/filepath"
	"testing"
)

func TestPeekMakesNothingGetMakesOnceRotateChanges(t *testing.T) {
	state := t.TempDir()
	s := New(state)
	if v, err := s.Peek("a", "pw"); err != nil || v != "" {
		t.Fatalf("peek of a missing secret: %q %v", v, err)
	}
	if _, err := os.Stat(filepath.Join(state, "secrets")); !os.IsNotExist(err) {
		t.Fatalf("peek created the secrets dir: %v", err)
	}
	v, err := s.Get("a", "pw")
	if err != nil || len(v) != 64 {
		t.Fatalf("get: %q %v", v, err)
	}
	fi, err := os.Stat(s.Path("a", "pw"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("secret file: %v %v", fi, err)
	}
	if di, err := os.Stat(filepath.Join(state, "secrets", "a")); err != nil || di.Mode().Perm() != 0o700 {
		t.Fatalf("secret dir: %v %v", di, err)
	}
	if again, _ := s.Get("a", "pw"); again != v {
		t.Fatal("get made a second value")
	}
	if p, _ := New(state).Peek("a", "pw"); p != v {
		t.Fatalf("another store peeks %q", p)
	}
	if err := s.Rotate("a", "pw"); err != nil {
		t.Fatal(err)
	}
	if r, _ := s.Get("a", "pw"); r == v || len(r) != 64 {
		t.Fatalf("rotated value %q", r)
	}
	os.RemoveAll(s.Path("a", ""))
	s.Forget("a")
	if p, _ := s.Peek("a", "pw"); p != "" {
		t.Fatalf("after purge and forget: %q", p)
	}
}

// Observe makes nothing: a secret not made yet gets one value in memory, the same until Commit
// saves it; a saved one is read.
func TestObserveMakesNothingUntilCommit(t *testing.T) {
	state := t.TempDir()
	s := New(state)
	v, err := s.Observe("a", "pw")
	if err != nil || len(v) != 64 {
		t.Fatalf("observe %q %v", v, err)
	}
	if again, _ := s.Observe("a", "pw"); again != v {
		t.Fatal("a second observe gave another value")
	}
	if _, err := os.Stat(filepath.Join(state, "secrets")); !os.IsNotExist(err) {
		t.Fatalf("observe created %v", err)
	}
	if failed := s.Commit(); failed != nil {
		t.Fatal(failed)
	}
	if kept, _ := New(state).Peek("a", "pw"); kept != v {
		t.Fatalf("committed %q, want %q", kept, v)
	}
	if o, _ := New(state).Observe("a", "pw"); o != v {
		t.Fatal("observe of a saved secret")
	}
}
