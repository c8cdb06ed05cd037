package main

import (
	"sync"
	"time"
)

// debounce returns a function that calls fn once, delay after the last call of a burst: the one
// shape every event source of lockstepd (podman events, inotify, systemd unit signals) uses to ask
// for a pass. The runner coalesces what still overlaps.
func debounce(delay time.Duration, fn func()) func() {
	var mu sync.Mutex
	var t *time.Timer
	return func() {
		mu.Lock()
		defer mu.Unlock()
		if t != nil {
			t.Stop()
		}
		t = time.AfterFunc(delay, fn)
	}
}
