package testenv

import (
	"fmt"
	"sync"
)

// Shared is one component set shared by all tests of a package: started by the first test that asks,
// torn down by Close from TestMain after m.Run.
type Shared struct {
	once     sync.Once
	err      error
	cleanups []func()
	start    func(t TB) any
	value    any
}

// NewShared returns a shared component made by start on first use.
func NewShared(start func(t TB) any) *Shared { return &Shared{start: start} }

// Get returns the shared component, starting it on first use; a failed start fails every caller.
func (s *Shared) Get(t TB, programs ...string) any {
	t.Helper()
	Need(t, programs...)
	s.once.Do(func() {
		defer func() {
			if r := recover(); r != nil {
				if f, ok := r.(fatal); ok {
					s.err = f
					return
				}
				panic(r)
			}
		}()
		s.value = s.start(s)
	})
	if s.err != nil {
		t.Fatalf("starting shared test components: %v", s.err)
	}
	return s.value
}

type fatal struct{ msg string }

func (f fatal) Error() string { return f.msg }

// Close runs the registered cleanups, newest first.
func (s *Shared) Close() {
	for i := len(s.cleanups) - 1; i >= 0; i-- {
		s.cleanups[i]()
	}
	s.cleanups = nil
}

// The TB methods, used while starting: failures abort the start.
func (s *Shared) Helper()                           {}
func (s *Shared) Logf(format string, args ...any)   {}
func (s *Shared) Cleanup(f func())                  { s.cleanups = append(s.cleanups, f) }
func (s *Shared) Fatalf(format string, args ...any) { panic(fatal{fmt.Sprintf(format, args...)}) }
func (s *Shared) Skipf(format string, args ...any)  { panic(fatal{fmt.Sprintf(format, args...)}) }
