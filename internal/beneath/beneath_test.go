package beneath

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

func TestWriteIfChangedWritesOnceAndRefusesWhatIsNotAFile(t *testing.T) {
	dir := t.TempDir()
	d, err := Open(filepath.Join(dir, "data"), 0o700)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if fi, _ := os.Stat(filepath.Join(dir, "data")); fi.Mode().Perm() != 0o700 {
		t.Fatalf("data dir mode %o", fi.Mode().Perm())
	}
	for i, want := range []bool{true, false} {
		changed, err := d.WriteIfChanged("a/b/c.conf", []byte("x=1\n"), 0o640, -1, -1, 0o755)
		if err != nil || changed != want {
			t.Fatalf("write %d: changed %v, %v", i, changed, err)
		}
	}
	fi, err := os.Stat(filepath.Join(dir, "data", "a", "b", "c.conf"))
	if err != nil || fi.Mode().Perm() != 0o640 {
		t.Fatalf("%v %v", fi, err)
	}
	if changed, err := d.WriteIfChanged("a/b/c.conf", []byte("x=1\n"), 0o600, -1, -1, 0o755); err != nil || !changed {
		t.Fatalf("a mode change rewrites: %v %v", changed, err)
	}
	os.Mkdir(filepath.Join(dir, "data", "sub"), 0o755)
	if _, err := d.WriteIfChanged("sub", []byte("x"), 0o600, -1, -1, 0o755); err == nil {
		t.Error("a directory was replaced")
	}
	os.Symlink("/etc/passwd", filepath.Join(dir, "data", "link"))
	if _, err := d.WriteIfChanged("link", []byte("x"), 0o600, -1, -1, 0o755); err == nil {
		t.Error("a symlink was replaced")
	}
	for _, bad := range []string{"../x", "/etc/x", "a/../../x"} {
		if _, err := d.WriteIfChanged(bad, []byte("x"), 0o600, -1, -1, 0o755); !errors.Is(err, ErrOutside) {
			t.Errorf("%s: %v", bad, err)
		}
	}
	if ents, _ := os.ReadDir(filepath.Join(dir, "data", "a", "b")); len(ents) != 1 {
		t.Errorf("temporary files left: %v", ents)
	}
}

func TestChownTreeFollowsNoSymlink(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	dir := t.TempDir()
	outside := filepath.Join(dir, "outside")
	os.MkdirAll(outside, 0o755)
	os.WriteFile(filepath.Join(outside, "f"), nil, 0o644)
	data := filepath.Join(dir, "data")
	os.MkdirAll(filepath.Join(data, "t", "deep"), 0o755)
	os.WriteFile(filepath.Join(data, "t", "deep", "f"), nil, 0o644)
	os.Symlink(outside, filepath.Join(data, "t", "link"))
	d, _ := Open(data, 0o700)
	defer d.Close()
	if err := d.ChownTree("t", 4242, 4343, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"t", "t/deep", "t/deep/f", "t/link"} {
		fi, _ := os.Lstat(filepath.Join(data, p))
		if st := fi.Sys().(*syscall.Stat_t); st.Uid != 4242 || st.Gid != 4343 {
			t.Errorf("%s: %d:%d", p, st.Uid, st.Gid)
		}
	}
	for _, p := range []string{outside, filepath.Join(outside, "f")} {
		fi, _ := os.Lstat(p)
		if st := fi.Sys().(*syscall.Stat_t); st.Uid == 4242 {
			t.Errorf("%s chowned through the symlink", p)
		}
	}
	if err := d.ChownTree("t/link", 1, 1, 0o755); !errors.Is(err, ErrSymlink) {
		t.Errorf("a symlink as the tree: %v", err)
	}
	if err := d.ChownTree("t/link/f", 1, 1, 0o755); !errors.Is(err, ErrSymlink) {
		t.Errorf("through a symlink: %v", err)
	}
	if err := d.ChownTree("made/here", 7, 7, 0o750); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Join(data, "made", "here")); err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o750 {
		t.Errorf("a missing path is made a directory: %v %v", fi, err)
	}
}

// Where openat2 is missing (ENOSYS: an old kernel, or systemd 252's seccomp filter in
// lockstepd.service, found in the sandbox), the walk one component at a time with O_NOFOLLOW
// holds the same: a directory swapped for a symlink to one outside, as fast as a swapper can
// (renameat2 RENAME_EXCHANGE), never lets 100,000 writes and chowns reach outside.
func TestWithoutOpenat2SymlinkSwapNeverWins(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (chown)")
	}
	useOpenat2.Store(false)
	defer useOpenat2.Store(true)
	base := t.TempDir()
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
		base, _ = os.MkdirTemp("/dev/shm", "lockstep-beneath-race-")
		defer os.RemoveAll(base)
	}
	data, outside := filepath.Join(base, "data"), filepath.Join(base, "outside")
	os.MkdirAll(filepath.Join(data, "conf", "sub"), 0o700)
	os.MkdirAll(outside, 0o755)
	victim := filepath.Join(outside, "victim")
	os.WriteFile(victim, []byte("original\n"), 0o644)
	os.Symlink(outside, filepath.Join(data, "alt"))
	d, err := Open(data, 0o700)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	stop := make(chan struct{})
	done := make(chan int)
	go func() {
		n := 0
		a, b := filepath.Join(data, "conf"), filepath.Join(data, "alt")
		for {
			select {
			case <-stop:
				done <- n
				return
			default:
			}
			if unix.Renameat2(unix.AT_FDCWD, a, unix.AT_FDCWD, b, unix.RENAME_EXCHANGE) == nil {
				n++
			}
		}
	}()
	refused := 0
	for i := range 100_000 {
		var err error
		if i%2 == 0 {
			_, err = d.WriteIfChanged("conf/victim", []byte(fmt.Sprintf("%d\n", i)), 0o644, 4242, 4242, 0o755)
		} else {
			err = d.ChownTree("conf", 4242, 4242, 0o755)
		}
		if err != nil {
			refused++
		}
	}
	close(stop)
	swaps := <-done
	if b, _ := os.ReadFile(victim); string(b) != "original\n" {
		t.Errorf("the file outside was rewritten: %q", b)
	}
	for _, p := range []string{outside, victim} {
		fi, _ := os.Lstat(p)
		if st := fi.Sys().(*syscall.Stat_t); st.Uid == 4242 {
			t.Errorf("%s chowned", p)
		}
	}
	if ents, _ := os.ReadDir(outside); len(ents) != 1 {
		t.Errorf("made outside: %d entries", len(ents))
	}
	if swaps < 1000 || refused == 0 {
		t.Fatalf("the race did not run: %d swaps, %d refused", swaps, refused)
	}
}

func TestWithoutOpenat2TheSameRefusals(t *testing.T) {
	useOpenat2.Store(false)
	defer useOpenat2.Store(true)
	t.Run("write", TestWriteIfChangedWritesOnceAndRefusesWhatIsNotAFile)
	t.Run("chown", TestChownTreeFollowsNoSymlink)
}
