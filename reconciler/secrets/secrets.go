package secrets

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/lockstep/lockstep/internal/atomicfile"
)

// Store keeps the secrets of STATE/secrets/APP/NAME, cached in memory once read.
type Store struct {
	dir   string
	mu    sync.Mutex
	cache map[string]string // APP/NAME -> value
	// pending holds the values Observe made up for secrets not saved yet (APP/NAME -> value).
	pending map[string]string
	// known are the values Redact hides (every value seen, rotated-out ones too); scanned tells
	// whether the state dir's secrets were read into it.
	known    map[string]bool
	scanned  bool
	replacer *strings.Replacer
}

// New returns the store of STATE-DIR/secrets; it creates nothing until a secret is made.
func New(stateDir string) *Store {
	return &Store{dir: filepath.Join(stateDir, "secrets"), cache: map[string]string{}}
}

// Path is where app's secret name is kept (name "": the app's dir).
func (s *Store) Path(app, name string) string { return filepath.Join(s.dir, app, name) }

// Get returns the secret, generating and saving it the first time.
func (s *Store) Get(app, name string) (string, error) {
	key := app + "/" + name
	s.mu.Lock()
	defer s.mu.Unlock()
	if v, ok := s.cache[key]; ok {
		return v, nil
	}
	b, err := os.ReadFile(s.Path(app, name))
	switch {
	case err == nil:
		v := strings.TrimSpace(string(b))
		if v == "" {
			return "", fmt.Errorf("secret %s of app %s: %s is empty", name, app, s.Path(app, name))
		}
		s.cache[key] = v
		return v, nil
	case !errors.Is(err, fs.ErrNotExist):
		return "", fmt.Errorf("secret %s of app %s: %w", name, app, unwrapPathErr(err))
	}
	v, err := s.writeNewLocked(app, name)
	if err != nil {
		return "", err
	}
	return v, nil
}

// Peek returns the secret if it exists, reading it without caching, and "" when it does not exist
// yet: it never creates a file or a directory (lockstepctl plan).
func (s *Store) Peek(app, name string) (string, error) {
	s.mu.Lock()
	v, ok := s.cache[app+"/"+name]
	s.mu.Unlock()
	if ok {
		return v, nil
	}
	b, err := os.ReadFile(s.Path(app, name))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "", nil
	case err != nil:
		return "", fmt.Errorf("secret %s of app %s: %w", name, app, unwrapPathErr(err))
	}
	v = strings.TrimSpace(string(b))
	s.mu.Lock()
	s.knowLocked(v)
	s.mu.Unlock()
	return v, nil
}

// Forget drops an app's cached secrets (after a purge).
func (s *Store) Forget(app string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k := range s.cache {
		if strings.HasPrefix(k, app+"/") {
			delete(s.cache, k)
		}
	}
	for k := range s.pending {
		if strings.HasPrefix(k, app+"/") {
			delete(s.pending, k)
		}
	}
}

// Rotate replaces the secret with a new random value.
func (s *Store) Rotate(app, name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.knowLocked(s.cache[app+"/"+name]) // the old value may still be in a container's env
	_, err := s.writeNewLocked(app, name)
	return err
}

func (s *Store) writeNewLocked(app, name string) (string, error) {
	v, err := newValue(app, name)
	if err != nil {
		return "", err
	}
	delete(s.pending, app+"/"+name)
	return v, s.saveLocked(app, name, v)
}

func newValue(app, name string) (string, error) {
	buf := make([]byte, 32)
	if _, err := rand.Read(buf); err != nil {
		return "", fmt.Errorf("secret %s of app %s: generating: %w", name, app, err)
	}
	return hex.EncodeToString(buf), nil
}

// saveLocked writes the secret (making its directory, mode 0700) and caches it.
func (s *Store) saveLocked(app, name, v string) error {
	dir := filepath.Join(s.dir, app)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("secret %s of app %s: %w", name, app, unwrapPathErr(err))
	}
	_ = os.Chmod(s.dir, 0o700)
	if err := atomicfile.Write(s.Path(app, name), []byte(v+"\n"), 0o600); err != nil {
		return fmt.Errorf("secret %s of app %s: saving: %w", name, app, unwrapPathErr(err))
	}
	s.cache[app+"/"+name] = v
	return nil
}

func unwrapPathErr(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return fmt.Errorf("%s %s: %w", pe.Op, pe.Path, pe.Err)
	}
	return err
}

// Observe returns the secret without creating anything: the kept value, or, for a secret not made
// yet, a new random value held in memory (the same one until Commit saves it), so that a pass plans
// with the value it will make and a dry run makes nothing.
func (s *Store) Observe(app, name string) (string, error) {
	key := app + "/" + name
	s.mu.Lock()
	defer s.mu.Unlock()
	if v, ok := s.cache[key]; ok {
		return v, nil
	}
	if v, ok := s.pending[key]; ok {
		return v, nil
	}
	b, err := os.ReadFile(s.Path(app, name))
	switch {
	case err == nil:
		v := strings.TrimSpace(string(b))
		if v == "" {
			return "", fmt.Errorf("secret %s of app %s: %s is empty", name, app, s.Path(app, name))
		}
		s.cache[key] = v
		return v, nil
	case !errors.Is(err, fs.ErrNotExist):
		return "", fmt.Errorf("secret %s of app %s: %w", name, app, unwrapPathErr(err))
	}
	v, err := newValue(app, name)
	if err != nil {
		return "", err
	}
	if s.pending == nil {
		s.pending = map[string]string{}
	}
	s.pending[key] = v
	return v, nil
}

// Commit saves the values Observe made up, and returns, by app, the first that could not be saved.
func (s *Store) Commit() map[string]error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var failed map[string]error
	for key, v := range s.pending {
		app, name, _ := strings.Cut(key, "/")
		if err := s.saveLocked(app, name, v); err != nil {
			if failed == nil {
				failed = map[string]error{}
			}
			if failed[app] == nil {
				failed[app] = err
			}
			continue
		}
		delete(s.pending, key)
	}
	return failed
}

// redactMin is the shortest value Redact hides: lockstep's secrets are 64 hex digits; a value an
// operator wrote by hand into a secret file is hidden from 8 characters on (a shorter one would
// hide ordinary words in messages).
const redactMin = 8

// Redacted stands in a message for a secret's value.
const Redacted = "[secret]"

// Redact returns s with every secret value this store knows replaced by [secret]: every value kept
// under the state dir (read once, on the first call, where the process may read them) and every value
// this store has read, made, peeked or rotated out since. It is the backstop under failures, the
// report and log lines: a message that quotes a secret by mistake never carries it out.
func (s *Store) Redact(msg string) string {
	if msg == "" {
		return msg
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.scanned {
		s.scanned = true
		apps, _ := os.ReadDir(s.dir)
		for _, a := range apps {
			names, _ := os.ReadDir(filepath.Join(s.dir, a.Name()))
			for _, n := range names {
				if b, err := os.ReadFile(filepath.Join(s.dir, a.Name(), n.Name())); err == nil {
					s.knowLocked(strings.TrimSpace(string(b)))
				}
			}
		}
	}
	for _, m := range []map[string]string{s.cache, s.pending} {
		for _, v := range m {
			s.knowLocked(v)
		}
	}
	if s.replacer == nil {
		return msg
	}
	return s.replacer.Replace(msg)
}

// knowLocked adds v to the values Redact hides.
func (s *Store) knowLocked(v string) {
	if len(v) < redactMin || s.known[v] {
		return
	}
	if s.known == nil {
		s.known = map[string]bool{}
	}
	s.known[v] = true
	var pairs []string
	for k := range s.known {
		pairs = append(pairs, k, Redacted)
	}
	s.replacer = strings.NewReplacer(pairs...)
}

// sealMark starts and ends the marker Seal puts in place of a secret's value: NUL, which no manifest
// string may contain, so a marker is never a manifest's own text.
const sealMark = "\x00"

// Seal returns s with the value of every secret this store holds replaced by a marker naming the
// secret (APP/NAME), for records that outlive the pass (rollback.json): they then hold no secret.
func (s *Store) Seal(v string) string {
	if v == "" {
		return v
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, m := range []map[string]string{s.cache, s.pending} {
		for key, val := range m {
			if len(val) >= redactMin {
				v = strings.ReplaceAll(v, val, sealMark+"secret:"+key+sealMark)
			}
		}
	}
	return v
}

// Unseal puts the current value of each secret a marker names back (read, never made); a marker of
// a secret that is gone is left as it is.
func (s *Store) Unseal(v string) string {
	for {
		i := strings.Index(v, sealMark+"secret:")
		if i < 0 {
			return v
		}
		j := strings.Index(v[i+1:], sealMark)
		if j < 0 {
			return v
		}
		key := v[i+len(sealMark+"secret:") : i+1+j]
		app, name, _ := strings.Cut(key, "/")
		val, err := s.Peek(app, name)
		if err != nil || val == "" {
			val = Redacted
		}
		v = v[:i] + val + v[i+1+j+len(sealMark):]
	}
}

// RedactError is err with its message redacted (nil for nil); errors.Is and As still see what it
// wraps.
func (s *Store) RedactError(err error) error {
	if err == nil {
		return nil
	}
	if msg := s.Redact(err.Error()); msg != err.Error() {
		return redactedError{msg, err}
	}
	return err
}

// redactedError is an error whose message had a secret value redacted.
type redactedError struct {
	msg string
	err error
}

func (e redactedError) Error() string { return e.msg }
func (e redactedError) Unwrap() error { return e.err }
