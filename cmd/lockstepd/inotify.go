package main

import (
	"context"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// watchDirs starts watching dirs at once (so nothing written after it returns is missed) and returns
// a function that, until ctx ends, calls changed whenever a file in one of them
// is created, written, renamed, deleted or changes mode: an edited or newly linked manifest reloads
// and reconciles without waiting for the timer. Directories that do not exist are skipped.
func watchDirs(dirs []string) (func(ctx context.Context, changed func()), error) {
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return nil, fmt.Errorf("inotify: %w", err)
	}
	f := os.NewFile(uintptr(fd), "inotify")
	const mask = unix.IN_CREATE | unix.IN_DELETE | unix.IN_CLOSE_WRITE | unix.IN_MOVED_TO | unix.IN_MOVED_FROM | unix.IN_ATTRIB | unix.IN_DELETE_SELF
	watched := 0
	for _, d := range dirs {
		if _, err := unix.InotifyAddWatch(fd, d, mask); err == nil {
			watched++
		}
	}
	if watched == 0 {
		f.Close()
		return func(context.Context, func()) {}, nil
	}
	return func(ctx context.Context, changed func()) { follow(ctx, f, changed) }, nil
}

func follow(ctx context.Context, f *os.File, changed func()) {
	defer f.Close()
	go func() { <-ctx.Done(); f.Close() }()
	buf := make([]byte, 64*1024)
	for {
		n, err := f.Read(buf)
		if err != nil || n <= 0 {
			return // closed: ctx ended
		}
		changed()
	}
}
