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

// Run runs one pre-start hook of app: it renders the template into the app's data dir (roots),
// writing the file only when its content changes, or fixes the ownership of a path. changed tells
// whether it rewrote a file's content.
func Run(set *manifest.Set, app *manifest.Loaded, h manifest.TemplateHook, roots manifest.Roots, value Value) (changed bool, err error) {
	dataDir := roots.AppData(app.ID)
	target, err := insideDataDir(dataDir, h.Path)
	if err != nil {
		return false, err
	}
	uid, gid := -1, -1
	if h.Owner != "" {
		u, g, _ := strings.Cut(h.Owner, ":")
		uid, _ = strconv.Atoi(u)
		gid, _ = strconv.Atoi(g)
	}
	if h.Template == "" {
		return false, chownTree(target, uid, gid)
	}
	out, err := render(set, app, h, dataDir, value)
	if err != nil {
		return false, err
	}
	mode := fs.FileMode(0o644)
	if h.Mode != "" {
		m, _ := strconv.ParseUint(h.Mode, 8, 32)
		mode = fs.FileMode(m)
	}
	if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
		return false, err
	}
	changed, err = atomicfile.WriteIfChanged(target, out, mode)
	if err != nil {
		return false, err
	}
	if uid >= 0 {
		if fi, err := os.Lstat(target); err == nil && !ownedBy(fi, uid, gid) {
			if err := os.Lchown(target, uid, gid); err != nil {
				return changed, err
			}
		}
	}
	return changed, nil
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
	funcs := template.FuncMap{
		"dep": func(name, key string) (string, error) {
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
			if e, ok := app.Exports[key]; !ok || !e.Secret {
				return "", fmt.Errorf("secret %q: the app declares no such secret export", key)
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
// it through symlinks (the data dir is writable by the app's containers).
func insideDataDir(dataDir, rel string) (string, error) {
	target := filepath.Join(dataDir, rel)
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		return "", err
	}
	if target == filepath.Clean(dataDir) {
		return target, nil // path "." (an ownership fix of the whole data dir): the data dir itself
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
