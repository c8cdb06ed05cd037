package atomicfile

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestWriteIfChanged(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	for i, tt := range []struct {
		data    string
		mode    os.FileMode
		changed bool
	}{
		{"one", 0o644, true},
		{"one", 0o644, false},
		{"two", 0o644, true},
		{"two", 0o600, true},
		{"two", 0o600, false},
	} {
		changed, err := WriteIfChanged(p, []byte(tt.data), tt.mode)
		if err != nil || changed != tt.changed {
			t.Fatalf("step %d: changed=%v err=%v, want changed=%v", i, changed, err, tt.changed)
		}
		b, _ := os.ReadFile(p)
		fi, _ := os.Stat(p)
		if string(b) != tt.data || fi.Mode().Perm() != tt.mode {
			t.Fatalf("step %d: content %q mode %v", i, b, fi.Mode())
		}
	}
	entries, _ := os.ReadDir(filepath.Dir(p))
	if len(entries) != 1 {
		t.Fatalf("temporary files left: %v", entries)
	}
}

func TestRefusesNonRegularTargets(t *testing.T) {
	dir := t.TempDir()
	os.Mkdir(filepath.Join(dir, "d"), 0o755)
	os.Symlink("/etc/passwd", filepath.Join(dir, "l"))
	for _, name := range []string{"d", "l"} {
		if _, err := WriteIfChanged(filepath.Join(dir, name), []byte("x"), 0o644); err == nil || !strings.Contains(err.Error(), "not a regular file") {
			t.Fatalf("%s: err %v", name, err)
		}
	}
}

// TestFullDiskKeepsOldFile writes to a tiny tmpfs until it is full: every failed write must leave the
// old content in place and no temporary file behind.
func TestFullDiskKeepsOldFile(t *testing.T) {
	dir := t.TempDir()
	if err := exec.Command("mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", dir).Run(); err != nil {
		if os.Getenv("LOCKSTEP_REQUIRE_REAL") == "1" {
			t.Fatalf("mounting a tmpfs (needs root): %v", err)
		}
		t.Skipf("mounting a tmpfs needs root: %v", err)
	}
	t.Cleanup(func() { syscall.Unmount(dir, syscall.MNT_DETACH) })
	p := filepath.Join(dir, "unit.container")
	old := bytes.Repeat([]byte("a"), 20<<10)
	if _, err := WriteIfChanged(p, old, 0o644); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "filler"), bytes.Repeat([]byte("f"), 36<<10), 0o644)
	_, err := WriteIfChanged(p, bytes.Repeat([]byte("b"), 30<<10), 0o644)
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("write on a full disk: %v, want ENOSPC", err)
	}
	if b, _ := os.ReadFile(p); !bytes.Equal(b, old) {
		t.Fatal("old content lost")
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 2 {
		t.Fatalf("temporary files left: %v", entries)
	}
}
