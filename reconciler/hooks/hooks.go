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

// Limits of a template: the source read, the output rendered, the time it may take.
var (
	MaxTemplateSource int64 = 1 << 20
	MaxOutput               = 4 << 20
	RenderTimeout           = 5 * time.Second
)

// DirMode is the mode of the directories a hook makes inside the data dir (the data dir's own mode
// bounds who reaches them).
const DirMode fs.FileMode = 0o755

// Run runs one pre-start hook of app: it renders the template into the app's data dir (roots),
// writing the file only when its content changes, or fixes the ownership of a path. changed tells
// whether it rewrote a file's content. Every step works relative to an open handle on the data dir
// and follows no symlink (package beneath): a container that swaps a directory for a symlink while
// the hook runs makes it fail, never write or chown outside the data dir.
func Run(set *manifest.Set, app *manifest.Loaded, h manifest.TemplateHook, roots manifest.Roots, value Value) (changed bool, err error) {
	dataDir := roots.AppData(app.ID)
	d, err := beneath.Open(dataDir, DataDirMode(app))
	if err != nil {
		return false, err
	}
	defer d.Close()
	uid, gid := -1, -1
	if h.Owner != "" {
		u, g, _ := strings.Cut(h.Owner, ":")
		uid, _ = strconv.Atoi(u)
		gid, _ = strconv.Atoi(g)
	}
	rel := strings.TrimPrefix(path.Clean("/"+filepath.ToSlash(h.Path)), "/")
	if h.Template == "" {
		return false, pathErr(h.Path, d.ChownTree(rel, uid, gid, DirMode))
	}
	out, sensitive, err := render(set, app, h, dataDir, value)
	if err != nil {
		return false, err
	}
	mode := fs.FileMode(0o644)
	if sensitive {
		mode = 0o600
	}
	if h.Mode != "" {
		m, _ := strconv.ParseUint(h.Mode, 8, 32)
		mode = fs.FileMode(m)
	}
	changed, err = d.WriteIfChanged(rel, out, mode, uid, gid, DirMode)
	return changed, pathErr(h.Path, err)
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
	funcs := template.FuncMap{
		"dep": func(name, key string) (string, error) {
			sensitive = true
			if !named[name] {
				return "", fmt.Errorf("dep %q: not named in requires.apps or requires.optional", name)
			}
			id, ok := set.Providers[name]
			if !ok {
				return "", nil // an optional dependency that is not installed
			}
			return value(set.ByID(id), key)
		},
		"has": func(name string) bool {
			_, ok := set.Providers[name]
			return named[name] && ok
		},
		"export": func(key string) (string, error) { return value(app, key) },
		"secret": func(key string) (string, error) {
			sensitive = true
			if e, ok := app.Exports[key]; !ok || !e.Secret {
				return "", fmt.Errorf("secret %q: the app declares no such secret export", key)
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
