package main

import (
	"sync/atomic"
	"testing"
	"time"
)

func TestDebounce(t *testing.T) {
	var n atomic.Int32
	kick := debounce(50*time.Millisecond, func() { n.Add(1) })
	for i := 0; i < 10; i++ {
		kick()
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(150 * time.Millisecond)
	if got := n.Load(); got != 1 {
		t.Fatalf("a burst of 10 calls made %d calls, want 1", got)
	}
	kick()
	time.Sleep(150 * time.Millisecond)
	if got := n.Load(); got != 2 {
		t.Fatalf("a later call made %d calls in all, want 2", got)
	}
}
