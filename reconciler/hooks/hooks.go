package hooks

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"text/template"

	"github.com/lockstep/lockstep/internal/atomicfile"
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
}

// Render works out one pre-start hook of app, reading only: the template rendered (value gives the
// exports, and must not make anything either), compared with the file in the app's data dir.
func Render(set *manifest.Set, app *manifest.Loaded, h manifest.TemplateHook, roots manifest.Roots, value Value) (*Output, error) {
	dataDir := roots.AppData(app.ID)
	target, err := insideDataDir(dataDir, h.Path, false)
	if err != nil {
		return nil, err
	}
	o := &Output{DataDir: dataDir, Rel: h.Path, Target: target, UID: -1, GID: -1, Mode: 0o644}
	if h.Owner != "" {
		u, g, _ := strings.Cut(h.Owner, ":")
		o.UID, _ = strconv.Atoi(u)
		o.GID, _ = strconv.Atoi(g)
	}
	if h.Template == "" {
		return o, nil
	}
	if o.Content, err = render(set, app, h, dataDir, value); err != nil {
		return nil, err
	}
	if h.Mode != "" {
		m, _ := strconv.ParseUint(h.Mode, 8, 32)
		o.Mode = fs.FileMode(m)
	}
	fi, err := os.Lstat(target)
	o.Changed = err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm() != o.Mode.Perm() || fi.Size() != int64(len(o.Content))
	if !o.Changed {
		old, err := os.ReadFile(target)
		o.Changed = err != nil || !bytes.Equal(old, o.Content)
	}
	return o, nil
}

// Apply writes what Render worked out: the file, only when its content changes, then its owner; or,
// for an ownership hook, the owner of the tree. The path is checked again against the data dir.
func Apply(o *Output) error {
	target, err := insideDataDir(o.DataDir, o.Rel, true)
	if err != nil {
		return err
	}
	if o.Content == nil {
		return chownTree(target, o.UID, o.GID)
	}
	if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
		return err
	}
	if _, err := atomicfile.WriteIfChanged(target, o.Content, o.Mode); err != nil {
		return err
	}
	if o.UID >= 0 {
		if fi, err := os.Lstat(target); err == nil && !ownedBy(fi, o.UID, o.GID) {
			return os.Lchown(target, o.UID, o.GID)
		}
	}
	return nil
}

// render executes the hook's template. Functions: dep NAME KEY (a dependency's export; "" for an
// optional dependency that is not installed), has NAME (is the dependency installed), export KEY and
// secret KEY (the app's own exports).
func render(set *manifest.Set, app *manifest.Loaded, h manifest.TemplateHook, dataDir string, value Value) ([]byte, error) {
	src := filepath.Join(app.Dir, h.Template)
	text, err := os.ReadFile(src)
	if err != nil {
		return nil, fmt.Errorf("reading template: %w", unwrapPathErr(err))
	}
	named := map[string]bool{}
	for _, d := range app.Deps() {
		named[d] = true
	}
	// The functions' errors never quote their arguments: a template may pass a value (a secret) where
	// a name belongs. text/template's own message locates the call by its source text.
	funcs := template.FuncMap{
		"dep": func(name, key string) (string, error) {
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
			if e, ok := app.Exports[key]; !ok || !e.Secret {
				return "", fmt.Errorf("secret: the app declares no such secret export")
			}
			return value(app, key)
		},
	}
	t, err := template.New(h.Template).Option("missingkey=error").Funcs(funcs).Parse(string(text))
	if err != nil {
		return nil, fmt.Errorf("parsing %s: %w", h.Template, err)
	}
	var buf bytes.Buffer
	data := TemplateData{ID: app.ID, Name: app.Name, Version: app.Version, DataDir: dataDir}
	if err := t.Execute(&buf, data); err != nil {
		return nil, fmt.Errorf("rendering %s: %w", h.Template, err)
	}
	return buf.Bytes(), nil
}

// insideDataDir resolves rel inside dataDir, refusing a path whose existing directories lead out of
// it through symlinks (the data dir is writable by the app's containers). With mkdir it makes the
// data dir; without, a data dir that does not exist yet holds nothing that could lead out.
func insideDataDir(dataDir, rel string, mkdir bool) (string, error) {
	target := filepath.Join(dataDir, rel)
	if !mkdir {
		if _, err := os.Lstat(dataDir); errors.Is(err, fs.ErrNotExist) {
			return target, nil
		}
	} else if err := os.MkdirAll(dataDir, 0o755); err != nil {
		return "", err
	}
	realData, err := filepath.EvalSymlinks(dataDir)
	if err != nil {
		return "", err
	}
	dir := filepath.Dir(target)
	for {
		if _, err := os.Lstat(dir); err == nil {
			break
		}
		dir = filepath.Dir(dir)
	}
	realDir, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return "", err
	}
	if realDir != realData && !strings.HasPrefix(realDir, realData+string(filepath.Separator)) {
		return "", fmt.Errorf("%s leads out of the app's data dir (through a symlink)", rel)
	}
	return target, nil
}

// chownTree gives path and everything under it the owner, without following symlinks, changing only
// what differs. A missing path is made a directory.
func chownTree(path string, uid, gid int) error {
	if _, err := os.Lstat(path); errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(path, 0o755); err != nil {
			return err
		}
	}
	return filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		if !ownedBy(fi, uid, gid) {
			return os.Lchown(p, uid, gid)
		}
		return nil
	})
}

func ownedBy(fi fs.FileInfo, uid, gid int) bool {
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && int(st.Uid) == uid && int(st.Gid) == gid
}

func unwrapPathErr(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return fmt.Errorf("%s %s: %w", pe.Op, pe.Path, pe.Err)
	}
	return err
}
