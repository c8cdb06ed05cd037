package secrets

import (
	"os"
	"path/filepath"
	"strings"
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

// TestRedactSealUnseal (issue 18): Redact hides every value kept in the state dir (read once, even
// secrets not used yet), those made since and a rotated-out one; Seal replaces the values it holds by
// markers that Unseal turns back into the current value.
func TestRedactSealUnseal(t *testing.T) {
	dir := t.TempDir()
	const canary = "canary-kept-before-start-0123456789"
	os.MkdirAll(filepath.Join(dir, "secrets", "a"), 0o700)
	os.WriteFile(filepath.Join(dir, "secrets", "a", "old"), []byte(canary+"\n"), 0o600)
	s := New(dir)
	made, err := s.Get("b", "pw")
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Redact("x " + canary + " y " + made + " short"); got != "x [secret] y [secret] short" {
		t.Fatalf("redacted %q", got)
	}
	if err := s.Rotate("b", "pw"); err != nil {
		t.Fatal(err)
	}
	now, _ := s.Get("b", "pw")
	if got := s.Redact(made + now); got != "[secret][secret]" {
		t.Fatalf("after a rotation: %q", got)
	}
	sealed := s.Seal("PW=" + now)
	if strings.Contains(sealed, now) || sealed != "PW=\x00secret:b/pw\x00" {
		t.Fatalf("sealed %q", sealed)
	}
	if got := New(dir).Unseal(sealed + " " + "\x00secret:gone/x\x00"); got != "PW="+now+" [secret]" {
		t.Fatalf("unsealed %q", got)
	}
}
