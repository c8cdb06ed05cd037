package hooks

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"text/template"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lockstep/lockstep/internal/beneath"
	"github.com/lockstep/lockstep/manifest"
)

// TemplateData is what a pre-start template sees as its dot.
type TemplateData struct {
	ID, Name, Version string
	// DataDir is the app's data directory on the host.
	DataDir string
}

// Value gives an app's exported value (a secret, a hostname, a fixed value).
type Value func(app *manifest.Loaded, name string) (string, error)

// Output is one pre-start hook's outcome, worked out without writing: the file it renders (Content
// nil: an ownership hook, which gives Target and everything under it the owner) and whether that
// changes the file on disk.
type Output struct {
	DataDir, Rel string // the app's data dir and the hook's path in it
	Target       string
	Content      []byte
	Mode         fs.FileMode
	UID, GID     int // -1: left as they are
	Changed      bool
	// DirMode is the mode the data dir is made with when Apply finds it missing (DataDirMode).
	DirMode fs.FileMode
}

// Limits of a template: the source read, the output rendered, the time it may take.
var (
	MaxTemplateSource int64 = 1 << 20
	MaxOutput               = 4 << 20
	RenderTimeout           = 5 * time.Second
)

// DirMode is the mode of the directories a hook makes inside the data dir (the data dir's own mode
// bounds who reaches them).
const DirMode fs.FileMode = 0o755

// Render works out one pre-start hook of app, reading only: the template rendered (value gives the
// exports, and must not make anything either), compared with the file in the app's data dir, read
// relative to an open handle on it without following a symlink (a path through one is refused).
// The file's mode is the hook's, else 0600 when the template called secret or dep, else 0644.
func Render(set *manifest.Set, app *manifest.Loaded, h manifest.TemplateHook, roots manifest.Roots, value Value) (*Output, error) {
	dataDir := roots.AppData(app.ID)
	rel := strings.TrimPrefix(path.Clean("/"+filepath.ToSlash(h.Path)), "/")
	o := &Output{DataDir: dataDir, Rel: rel, Target: filepath.Join(dataDir, rel), UID: -1, GID: -1, Mode: 0o644, DirMode: DataDirMode(app)}
	if h.Owner != "" {
		u, g, _ := strings.Cut(h.Owner, ":")
		o.UID, _ = strconv.Atoi(u)
		o.GID, _ = strconv.Atoi(g)
	}
	var d *beneath.Dir
	if _, err := os.Lstat(dataDir); err == nil { // a data dir not made yet holds nothing to compare
		if d, err = beneath.Open(dataDir, o.DirMode); err != nil {
			return nil, err
		}
		defer d.Close()
		if err := d.Check(rel); err != nil {
			return nil, pathErr(h.Path, err)
		}
	}
	if h.Template == "" {
		return o, nil
	}
	content, sensitive, err := render(set, app, h, dataDir, value)
	if err != nil {
		return nil, err
	}
	o.Content = content
	if sensitive {
		o.Mode = 0o600
	}
	if h.Mode != "" {
		m, _ := strconv.ParseUint(h.Mode, 8, 32)
		o.Mode = fs.FileMode(m)
	}
	o.Changed = true
	if d != nil {
		if st, err := d.Lstat(rel); err == nil && st.Mode&unix.S_IFMT == unix.S_IFREG && fs.FileMode(st.Mode&0o7777) == o.Mode.Perm() && st.Size == int64(len(content)) {
			old, err := d.ReadFile(rel, int64(len(content))+1)
			o.Changed = err != nil || !bytes.Equal(old, content)
		}
	}
	return o, nil
}

// Apply writes what Render worked out: the file, only when its content changes, with its owner and
// mode before it is renamed into place; or, for an ownership hook, the owner of the tree. Every
// step works relative to an open handle on the data dir and follows no symlink (package beneath):
// a container that swaps a directory for a symlink meanwhile makes it fail, never write or chown
// outside the data dir.
func Apply(o *Output) error {
	d, err := beneath.Open(o.DataDir, o.DirMode)
	if err != nil {
		return err
	}
	defer d.Close()
	if o.Content == nil {
		return pathErr(o.Rel, d.ChownTree(o.Rel, o.UID, o.GID, DirMode))
	}
	_, err = d.WriteIfChanged(o.Rel, o.Content, o.Mode, o.UID, o.GID, DirMode)
	return pathErr(o.Rel, err)
}

// DataDirMode is the mode an app's data dir is made with: 0700, or 0711 when one of its
// containers runs as a user other than root (who may need to traverse it to a path mounted or
// owned below).
func DataDirMode(app *manifest.Loaded) fs.FileMode {
	for _, m := range app.Members() {
		if u := m.Container.User; u != "" && u != "0" && !strings.HasPrefix(u, "0:") && u != "root" && !strings.HasPrefix(u, "root:") {
			return 0o711
		}
	}
	return 0o700
}

// pathErr says which hook path a refusal is about.
func pathErr(rel string, err error) error {
	if errors.Is(err, beneath.ErrSymlink) {
		return fmt.Errorf("%s leads out of the app's data dir (through a symlink): %w", rel, err)
	}
	return err
}

// render executes the hook's template. Functions: dep NAME KEY (a dependency's export; "" for an
// optional dependency that is not installed), has NAME (is the dependency installed), export KEY and
// secret KEY (the app's own exports).
// sensitive tells whether the template called secret or dep while rendering.
func render(set *manifest.Set, app *manifest.Loaded, h manifest.TemplateHook, dataDir string, value Value) (out []byte, sensitive bool, err error) {
	src := filepath.Join(app.Dir, h.Template)
	text, err := readBounded(src, MaxTemplateSource)
	if err != nil {
		return nil, false, fmt.Errorf("reading template: %w", unwrapPathErr(err))
	}
	named := map[string]bool{}
	for _, d := range app.Deps() {
		named[d] = true
	}
	// The functions' errors never quote their arguments: a template may pass a value (a secret) where
	// a name belongs. text/template's own message locates the call by its source text.
	funcs := template.FuncMap{
		"dep": func(name, key string) (string, error) {
			sensitive = true
			if !named[name] {
				return "", fmt.Errorf("dep: its first argument is not a dependency named in requires.apps or requires.optional")
			}
			id, ok := set.Providers[name]
			if !ok {
				return "", nil // an optional dependency that is not installed
			}
			p := set.ByID(id)
			e, ok := p.Exports[key]
			if !ok {
				return "", fmt.Errorf("dep: app %s exports no such value", id)
			}
			if e.Secret && !e.Shared && id != app.ID {
				return "", fmt.Errorf("dep: app %s does not share that secret (a provider shares a secret export with shared: true)", id)
			}
			return value(p, key)
		},
		"has": func(name string) bool {
			_, ok := set.Providers[name]
			return named[name] && ok
		},
		"export": func(key string) (string, error) {
			if _, ok := app.Exports[key]; !ok {
				return "", fmt.Errorf("export: the app declares no such export")
			}
			return value(app, key)
		},
		"secret": func(key string) (string, error) {
			sensitive = true
			if e, ok := app.Exports[key]; !ok || !e.Secret {
				return "", fmt.Errorf("secret: the app declares no such secret export")
			}
			return value(app, key)
		},
	}
	t, err := template.New(h.Template).Option("missingkey=error").Funcs(funcs).Parse(string(text))
	if err != nil {
		return nil, false, fmt.Errorf("parsing %s: %w", h.Template, err)
	}
	data := TemplateData{ID: app.ID, Name: app.Name, Version: app.Version, DataDir: dataDir}
	w := &boundedWriter{max: MaxOutput}
	done := make(chan error, 1)
	go func() { done <- t.Execute(w, data) }()
	timer := time.NewTimer(RenderTimeout)
	defer timer.Stop()
	select {
	case err = <-done:
	case <-timer.C:
		// text/template cannot be stopped: the goroutine is left to finish (its output is
		// bounded, and discarded); the hook fails now.
		w.abandon()
		return nil, false, fmt.Errorf("rendering %s: took longer than %s", h.Template, RenderTimeout)
	}
	if err != nil {
		return nil, false, fmt.Errorf("rendering %s: %w", h.Template, err)
	}
	return w.bytes(), sensitive, nil
}

// boundedWriter holds a template's output up to max bytes; past that every write fails, which
// stops the template.
type boundedWriter struct {
	mu        sync.Mutex
	buf       bytes.Buffer
	max       int
	abandoned bool
}

var errTooLarge = errors.New("output too large")

func (w *boundedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.abandoned {
		return 0, errors.New("abandoned")
	}
	if w.buf.Len()+len(p) > w.max {
		return 0, fmt.Errorf("%w (more than %d bytes)", errTooLarge, w.max)
	}
	return w.buf.Write(p)
}

func (w *boundedWriter) abandon() {
	w.mu.Lock()
	w.abandoned = true
	w.buf = bytes.Buffer{}
	w.mu.Unlock()
}

func (w *boundedWriter) bytes() []byte {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Bytes()
}

// readBounded reads at most max bytes of file, refusing a larger one.
func readBounded(file string, max int64) ([]byte, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("%s: larger than %d bytes", file, max)
	}
	return b, nil
}

func unwrapPathErr(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return fmt.Errorf("%s %s: %w", pe.Op, pe.Path, pe.Err)
	}
	return err
}
