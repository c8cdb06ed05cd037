// Package atomicfile writes files so that readers see the old content or the new, never a mix.
package atomicfile

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// WriteIfChanged makes path hold data with the given mode. When the file already holds exactly data
// (and has that mode) it writes nothing and returns false. Otherwise it writes a temporary file in the
// same directory, fsyncs it, renames it over path and fsyncs the directory, so a crash or a full disk
// leaves either the old file or the new one. It refuses to replace anything but a regular file.
func WriteIfChanged(path string, data []byte, mode fs.FileMode) (changed bool, err error) {
	fi, err := os.Lstat(path)
	switch {
	case err == nil:
		if !fi.Mode().IsRegular() {
			return false, fmt.Errorf("writing %s: not a regular file (%s)", path, fi.Mode().Type())
		}
		if fi.Mode().Perm() == mode.Perm() && fi.Size() == int64(len(data)) {
			if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, data) {
				return false, nil
			}
		}
	case !errors.Is(err, fs.ErrNotExist):
		return false, fmt.Errorf("writing %s: %w", path, err)
	}
	return true, Write(path, data, mode)
}

// Write replaces path with data atomically (see WriteIfChanged), whether or not it changed.
func Write(path string, data []byte, mode fs.FileMode) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if _, err = f.Write(data); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err = f.Chmod(mode.Perm()); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err = f.Sync(); err != nil {
		return fmt.Errorf("writing %s: syncing: %w", path, err)
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err = os.Rename(tmp, path); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if d, derr := os.Open(dir); derr == nil {
		serr := d.Sync()
		d.Close()
		if serr != nil {
			return fmt.Errorf("writing %s: syncing directory: %w", path, serr)
		}
	}
	return nil
}

// RemoveTemps removes from dir (not below it) the temporary files that Write leaves behind when its
// process dies between creating one and renaming it over its target (".TARGET.tmp-DIGITS"), for the
// targets that match accepts (nil: all). Call it only where no other process writes to dir. It
// returns the paths removed.
func RemoveTemps(dir string, match func(target string) bool) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		return nil, err
	}
	var removed []string
	for _, e := range entries {
		target, ok := tempTarget(e.Name())
		if !ok || !e.Type().IsRegular() || (match != nil && !match(target)) {
			continue
		}
		p := filepath.Join(dir, e.Name())
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return removed, err
		}
		removed = append(removed, p)
	}
	return removed, nil
}

// tempTarget returns the target of a temporary file name made by Write.
func tempTarget(name string) (string, bool) {
	i := strings.LastIndex(name, ".tmp-")
	if !strings.HasPrefix(name, ".") || i <= 1 {
		return "", false
	}
	digits := name[i+len(".tmp-"):]
	if digits == "" || strings.Trim(digits, "0123456789") != "" {
		return "", false
	}
	return name[1:i], true
}
