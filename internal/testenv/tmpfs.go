package testenv

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// Tmpfs mounts a tmpfs of the given size in a new directory under /var/tmp and unmounts and removes
// it when the test ends: a small disk that tests can fill. Mounting needs root (CAP_SYS_ADMIN):
// without it the test is skipped, or fails when real components are required.
func Tmpfs(t TB, sizeKiB int) string {
	t.Helper()
	dir, err := os.MkdirTemp("/var/tmp", "lockstep-tmpfs-")
	if err != nil {
		t.Fatalf("%v", err)
	}
	if err := syscall.Mount("tmpfs", dir, "tmpfs", syscall.MS_NOSUID|syscall.MS_NODEV, fmt.Sprintf("size=%dk,mode=0755", sizeKiB)); err != nil {
		os.Remove(dir)
		if Required() {
			t.Fatalf("mounting a tmpfs (needs root): %v", err)
		}
		t.Skipf("mounting a tmpfs (needs root): %v", err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, 0); err != nil {
			syscall.Unmount(dir, syscall.MNT_DETACH)
		}
		os.Remove(dir)
	})
	return dir
}

// Fill writes a file in dir until the file system is full and returns its path; removing it frees
// the space again.
func Fill(t TB, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "filler")
	f, err := os.Create(path)
	if err != nil {
		t.Fatalf("%v", err)
	}
	defer f.Close()
	buf := make([]byte, 4096)
	for {
		if _, err := f.Write(buf); err != nil {
			if errors.Is(err, syscall.ENOSPC) {
				return path
			}
			t.Fatalf("filling %s: %v", dir, err)
		}
	}
}
