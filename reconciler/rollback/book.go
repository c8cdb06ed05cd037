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

	// seal and unseal (Open) replace each secret value of a saved request's env and command by a
	// marker naming the secret, and put the current value back: rollback.json holds no secret.
	seal, unseal func(string) string

	Running map[string]plan.Running // pass goroutine only: containers without a health check
	Held    map[string]bool         // pass goroutine only: containers held or rolled back in this pass
}

// Load reads STATE-DIR/rollback.json. A file lockstep may not read (a plan run by a user)
// leaves the book empty and read-only; a corrupt one is an error, as for adoptions.
// seal and unseal (the secret store's Seal and Unseal) keep secret values out of the file (Open).
func Load(dir string, log interface{ Warnf(string, ...any) }, seal, unseal func(string) string) (*Book, error) {
	rb := &Book{path: filepath.Join(dir, File), Apps: map[string]*plan.Record{},
		Running: map[string]plan.Running{}, Held: map[string]bool{}}
	b, err := os.ReadFile(rb.path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		rb.seal, rb.unseal = seal, unseal
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
	rb.Open(seal, unseal)
	return rb, nil
}

// Open gives the book its sealing (the secret store's Seal and Unseal) and unseals the records read.
func (rb *Book) Open(seal, unseal func(string) string) {
	rb.seal, rb.unseal = seal, unseal
	for _, rec := range rb.Apps {
		mapRequest(rec, unseal)
	}
}

// mapRequest applies f to the env values and command words of rec's good request: the only strings
// of a request that ${APP.NAME} values (secrets) reach.
func mapRequest(rec *plan.Record, f func(string) string) {
	if rec == nil || rec.Good == nil || f == nil {
		return
	}
	r := &rec.Good.Request
	if len(r.Env) > 0 {
		env := make(map[string]string, len(r.Env))
		for k, v := range r.Env {
			env[k] = f(v)
		}
		r.Env = env
	}
	if len(r.Command) > 0 {
		cmd := make([]string, len(r.Command))
		for i, w := range r.Command {
			cmd[i] = f(w)
		}
		r.Command = cmd
	}
}

// SaveLocked writes the book (held locked) if it changed since the last write, sealed: no secret
// value is written.
func (rb *Book) SaveLocked() error {
	if !rb.Dirty || rb.ReadOnly {
		return nil
	}
	b, err := json.Marshal(rb.Apps)
	if err != nil {
		return err
	}
	sealed := map[string]*plan.Record{}
	if err := json.Unmarshal(b, &sealed); err != nil {
		return err
	}
	for _, rec := range sealed {
		mapRequest(rec, rb.seal)
	}
	b, err = json.MarshalIndent(sealed, "", "  ")
	if err != nil {
		return err
	}
	if err := atomicfile.Write(rb.path, append(b, '\n'), 0o600); err != nil { // 0600 still: it names the apps' env
		return fmt.Errorf("saving rollback records: %w", err)
	}
	rb.Dirty = false
	rb.Writes++
	return nil
}
