package manifest

import (
	"os"
	"path/filepath"
	"sync"
	"syscall"
)

// Cache remembers parsed manifests by file identity (device, inode, size, mtime and ctime of the file a
// path resolves to), so a pass over unchanged manifests parses nothing. Cross-checks between apps are
// cheap and always run again.
type Cache struct {
	mu      sync.Mutex
	entries map[string]cacheEntry
}

type fileKey struct {
	dev, ino     uint64
	size         int64
	mtime, ctime int64
	roots        string
}

type cacheEntry struct {
	key      fileKey
	loaded   *Loaded
	problems Problems
}

// NewCache returns an empty cache.
func NewCache() *Cache { return &Cache{entries: map[string]cacheEntry{}} }

func keyOf(path string, roots Roots) (fileKey, bool) {
	fi, err := os.Stat(path)
	if err != nil {
		return fileKey{}, false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok || !fi.Mode().IsRegular() {
		return fileKey{}, false
	}
	r := roots.DataRoot
	for _, e := range roots.Extra {
		r += "\x00" + e
	}
	r += "\x00" + roots.NetworkPrefix + "\x00" + roots.Policy.Digest()
	return fileKey{dev: uint64(st.Dev), ino: st.Ino, size: fi.Size(), mtime: fi.ModTime().UnixNano(),
		ctime: st.Ctim.Sec*1e9 + st.Ctim.Nsec, roots: r}, true
}

// LoadFile is LoadFile through the cache.
func (c *Cache) LoadFile(path string, roots Roots) (*Loaded, Problems) {
	key, ok := keyOf(path, roots)
	if ok {
		c.mu.Lock()
		e, hit := c.entries[path]
		c.mu.Unlock()
		if hit && e.key == key {
			return e.loaded, e.problems
		}
	}
	l, ps := LoadFile(path, roots)
	if ok {
		c.mu.Lock()
		c.entries[path] = cacheEntry{key, l, ps}
		c.mu.Unlock()
	}
	return l, ps
}

// LoadDir is LoadDir through the cache; entries for files no longer there are dropped.
func (c *Cache) LoadDir(dir string, roots Roots) (*Set, error) {
	files, err := manifestFiles(dir)
	if err != nil {
		return nil, err
	}
	present := map[string]bool{}
	for _, f := range files {
		present[f] = true
	}
	c.mu.Lock()
	for p := range c.entries {
		if filepath.Dir(p) == dir && !present[p] {
			delete(c.entries, p)
		}
	}
	c.mu.Unlock()
	return loadFiles(files, roots, c.LoadFile), nil
}
