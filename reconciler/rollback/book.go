package rollback

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/lockstep/lockstep/internal/atomicfile"
	"github.com/lockstep/lockstep/spec"
)

// File is the book's name in the state dir.
const File = "rollback.json"

// Good is the last known-good container of an app.
type Good struct {
	Hash    string             `json:"spec_hash"`
	Scheme  string             `json:"hash_scheme"`
	Request spec.CreateRequest `json:"request"`
}

// Failed is a spec that was rolled back; it is not applied again until the manifest changes.
type Failed struct {
	Hash   string    `json:"spec_hash"`
	Reason string    `json:"reason"`
	At     time.Time `json:"at"`
}

// Trial is a recreated container not yet judged.
type Trial struct {
	Hash    string    `json:"spec_hash"`
	From    string    `json:"from_hash"` // the good spec it falls back to
	Started time.Time `json:"started"`
	Error   string    `json:"error,omitempty"` // the recreate's error, when it failed
}

// Record is kept per container (by podman name: an app's id for a one-container app).
type Record struct {
	App    string  `json:"app"`
	Good   *Good   `json:"good,omitempty"`
	Failed *Failed `json:"failed,omitempty"`
	Trial  *Trial  `json:"trial,omitempty"`
}

// Running is when the pass first saw a container without a health check running.
type Running struct {
	ID    string
	Since time.Time
}

// Book is the persisted rollback book plus per-pass scratch state; its Mutex guards it.
type Book struct {
	sync.Mutex
	path     string
	ReadOnly bool               // the file could not be read (not root): never overwrite it
	Apps     map[string]*Record // by container name
	Dirty    bool               // changed since the last write
	Writes   int                // files written, for tests

	Running map[string]Running // pass goroutine only: containers without a health check
	Held    map[string]bool    // pass goroutine only: containers held or rolled back in this pass
}

// Load reads STATE-DIR/rollback.json. A file lockstep may not read (a plan run by a user)
// leaves the book empty and read-only; a corrupt one is an error, as for adoptions.
func Load(dir string, log interface{ Warnf(string, ...any) }) (*Book, error) {
	rb := &Book{path: filepath.Join(dir, File), Apps: map[string]*Record{},
		Running: map[string]Running{}, Held: map[string]bool{}}
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
		rb.Apps = map[string]*Record{}
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

// Record returns the record of container name (app's), making it if there is none.
func (rb *Book) Record(name, app string) *Record {
	rec := rb.Apps[name]
	if rec == nil {
		rec = &Record{}
		rb.Apps[name] = rec
	}
	rec.App = app
	return rec
}
