package reconciler

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/lockstep/lockstep/internal/beneath"
	"github.com/lockstep/lockstep/manifest"
)

// A bind source whose path runs through a symlink is refused before anything is made or mounted:
// here another app's container turned the directory a root companion mounts into a symlink to /.
func TestBindSourceThroughASymlinkIsRefused(t *testing.T) {
	base := t.TempDir()
	roots := manifest.Roots{DataRoot: filepath.Join(base, "data")}
	os.MkdirAll(filepath.Join(roots.DataRoot, "owner"), 0o700)
	if err := os.Symlink("/", filepath.Join(roots.DataRoot, "owner", "shared")); err != nil {
		t.Fatal(err)
	}
	// (The last would make a directory in / if followed: its name is this test's own.)
	for _, src := range []string{"owner/shared", "owner/shared/etc", "owner/shared/lockstep-prepare-test/dir"} {
		err := prepareSource(roots, "owner", filepath.Join(roots.DataRoot, src))
		if !errors.Is(err, beneath.ErrSymlink) {
			t.Errorf("%s: %v, want a refusal (through a symlink)", src, err)
		}
	}
	if _, err := os.Lstat("/lockstep-prepare-test"); err == nil {
		os.RemoveAll("/lockstep-prepare-test/dir")
		os.Remove("/lockstep-prepare-test")
		t.Error("/lockstep-prepare-test was made")
	}
	// An ordinary source is made; an existing file is kept.
	if err := prepareSource(roots, "owner", filepath.Join(roots.DataRoot, "owner", "a", "b")); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(roots.DataRoot, "owner", "file"), nil, 0o600)
	if err := prepareSource(roots, "owner", filepath.Join(roots.DataRoot, "owner", "file")); err != nil {
		t.Fatal(err)
	}
	if err := prepareSource(roots, "owner", "/etc"); err == nil {
		t.Error("/etc accepted")
	}
}

// TestBindSourceSwapNeverWins: while a container swaps a directory on a bind source's path for a
// symlink to a directory outside the data root as fast as it can (renameat2 RENAME_EXCHANGE), the
// real prepareSource runs 100,000 times; nothing may ever be made outside.
func TestBindSourceSwapNeverWins(t *testing.T) {
	base := t.TempDir()
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
		base, _ = os.MkdirTemp("/dev/shm", "lockstep-source-race-")
		defer os.RemoveAll(base)
	}
	roots := manifest.Roots{DataRoot: filepath.Join(base, "data")}
	outside := filepath.Join(base, "outside")
	os.MkdirAll(outside, 0o755)
	app := filepath.Join(roots.DataRoot, "owner")
	os.MkdirAll(filepath.Join(app, "shared"), 0o755)
	if err := os.Symlink(outside, filepath.Join(app, "alt")); err != nil {
		t.Fatal(err)
	}
	var stop atomic.Bool
	var swaps atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		a, b := filepath.Join(app, "shared"), filepath.Join(app, "alt")
		for !stop.Load() {
			if unix.Renameat2(unix.AT_FDCWD, a, unix.AT_FDCWD, b, unix.RENAME_EXCHANGE) == nil {
				swaps.Add(1)
			}
		}
	}()
	refused := 0
	for i := range 100_000 {
		// A new source each time, so every try races the check and the creation.
		if err := prepareSource(roots, "owner", filepath.Join(app, "shared", fmt.Sprint(i), "c")); err != nil {
			refused++
		}
	}
	stop.Store(true)
	<-done
	if ents, _ := os.ReadDir(outside); len(ents) != 0 {
		t.Errorf("made outside the data root: %d entries, the first %s", len(ents), ents[0].Name())
	}
	if swaps.Load() < 1000 || refused == 0 {
		t.Fatalf("the race did not run: %d swaps, %d refused", swaps.Load(), refused)
	}
	t.Logf("%d swaps, %d refused", swaps.Load(), refused)
}
