package mounts

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/lockstep/lockstep/manifest"
	"github.com/lockstep/lockstep/reconciler/plan"
	"github.com/lockstep/lockstep/spec"
)

// Bounds of a mount's fingerprint: a mount is a directory of a few credential files, not a tree.
const (
	printMaxEntries = 1000
	printMaxDepth   = 3
)

// Fingerprints takes, while observing, the fingerprint of every desired container's mounts.
func Fingerprints(desired []*spec.Desired) map[string]string {
	out := map[string]string{}
	for _, d := range desired {
		if len(d.Mounts) > 0 {
			out[d.Name()] = fingerprint(d.Mounts)
		}
	}
	return out
}

// Book keeps the fingerprint of each container's mounts at its last start (pass goroutine only).
type Book struct{ prints map[string]string }

// Fold turns running, unchanged containers whose mounts' fingerprint (prints: the observed ones)
// moved since their start into restarts, and books the fingerprint each container starts with. It
// does no I/O.
func (b *Book) Fold(actions []plan.Action, prints map[string]string) {
	if b.prints == nil {
		b.prints = map[string]string{}
	}
	seen := map[string]bool{}
	for i := range actions {
		a := &actions[i]
		if a.Desired == nil || len(a.Desired.Mounts) == 0 || a.Kind == plan.KindRemove {
			continue
		}
		name := a.Name()
		seen[name] = true
		if a.Blocked != nil || !a.WaitUntil.IsZero() || a.WaitDep != "" || a.Kind == plan.KindHold || a.Kind == plan.KindWait {
			continue // not started in this pass: it takes its fingerprint when it is
		}
		if a.Kind == plan.KindNone && (a.Container == nil || a.Container.State != "running") {
			continue
		}
		p := prints[name]
		old, known := b.prints[name]
		b.prints[name] = p
		if a.Kind == plan.KindNone && known && old != p {
			var srcs []string
			for _, m := range a.Desired.Mounts {
				srcs = append(srcs, m.Source)
			}
			a.Kind, a.ConfigChanged = plan.KindRestart, true
			a.Cause = fmt.Sprintf("files it mounts read-only changed (%s)", strings.Join(srcs, ", "))
		}
	}
	for name := range b.prints {
		if !seen[name] {
			delete(b.prints, name)
		}
	}
}

// fingerprint sums what identifies the files under the mounts' sources, bounded.
func fingerprint(mounts []manifest.Volume) string {
	h := sha256.New()
	n := 0
	for _, m := range mounts {
		fmt.Fprintf(h, "%s\x00", m.Source)
		root := filepath.Clean(m.Source)
		filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				fmt.Fprintf(h, "%s\x00!\x00", p)
				return nil
			}
			if n++; n > printMaxEntries {
				return filepath.SkipAll
			}
			rel, _ := filepath.Rel(root, p)
			if d.IsDir() && rel != "." && strings.Count(rel, string(filepath.Separator)) >= printMaxDepth-1 {
				return filepath.SkipDir
			}
			fi, err := os.Lstat(p)
			if err != nil {
				return nil
			}
			fmt.Fprintf(h, "%s\x00%d\x00%d\x00%o\x00", rel, fi.Size(), fi.ModTime().UnixNano(), fi.Mode())
			if st, ok := fi.Sys().(*syscall.Stat_t); ok {
				fmt.Fprintf(h, "%d\x00%d.%d\x00", st.Ino, st.Ctim.Sec, st.Ctim.Nsec)
			}
			return nil
		})
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}
