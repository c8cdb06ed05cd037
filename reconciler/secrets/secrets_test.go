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
