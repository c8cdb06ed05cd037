package rollback

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	"github.com/lockstep/lockstep/internal/atomicfile"
	"github.com/lockstep/lockstep/reconciler/plan"
)

// File is the book's name in the state dir.
const File = "rollback.json"

// Book is the persisted rollback book plus per-pass scratch state; its Mutex guards it.
type Book struct {
	sync.Mutex
	path     string
	ReadOnly bool                    // the file could not be read (not root): never overwrite it
	Apps     map[string]*plan.Record // by container name
	Dirty    bool                    // changed since the last write
	Writes   int                     // files written, for tests

	Running map[string]plan.Running // pass goroutine only: containers without a health check
	Held    map[string]bool         // pass goroutine only: containers held or rolled back in this pass
}

// Load reads STATE-DIR/rollback.json. A file lockstep may not read (a plan run by a user)
// leaves the book empty and read-only; a corrupt one is an error, as for adoptions.
func Load(dir string, log interface{ Warnf(string, ...any) }) (*Book, error) {
	rb := &Book{path: filepath.Join(dir, File), Apps: map[string]*plan.Record{},
		Running: map[string]plan.Running{}, Held: map[string]bool{}}
	b, err := os.ReadFile(rb.path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return rb, nil
	case errors.Is(err, fs.ErrPermission):
		log.Warnf("rollback records %s are not readable; rollback is off in this process: %v", rb.path, err)
		rb.ReadOnly = true
		return rb, nil
	case err != nil:
		return nil, fmt.Errorf("reading rollback records: %w", err)
	}
	if err := json.Unmarshal(b, &rb.Apps); err != nil {
		return nil, fmt.Errorf("reading %s: %w", rb.path, err)
	}
	if rb.Apps == nil {
		rb.Apps = map[string]*plan.Record{}
	}
	return rb, nil
}

// SaveLocked writes the book (held locked) if it changed since the last write.
func (rb *Book) SaveLocked() error {
	if !rb.Dirty || rb.ReadOnly {
		return nil
	}
	b, err := json.MarshalIndent(rb.Apps, "", "  ")
	if err != nil {
		return err
	}
	if err := atomicfile.Write(rb.path, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("saving rollback records: %w", err)
	}
	rb.Dirty = false
	rb.Writes++
	return nil
}
