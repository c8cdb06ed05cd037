package beneath

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/big"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// ErrSymlink is returned for a path that runs through a symlink (or ends in one).
var ErrSymlink = errors.New("runs through a symlink")

// ErrOutside is returned for a path that is absolute or climbs out of the directory with "..".
var ErrOutside = errors.New("leads out of the directory")

const resolve = unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS

// Dir is an open directory; the paths given to its methods are relative to it (slash-separated,
// "" or "." for the directory itself).
type Dir struct {
	fd   int
	name string // for messages
}

// Open opens the directory at path (the caller's, trusted: its own symlinks are followed). A
// missing directory is made with mode (and its missing parents with 0755).
func Open(dir string, mode fs.FileMode) (*Dir, error) {
	if _, err := os.Lstat(dir); errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
			return nil, err
		}
		if err := os.Mkdir(dir, mode.Perm()); err != nil && !errors.Is(err, fs.ErrExist) {
			return nil, err
		} else if err == nil {
			if err := os.Chmod(dir, mode.Perm()); err != nil { // past the umask
				return nil, err
			}
		}
	}
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: dir, Err: err}
	}
	return &Dir{fd: fd, name: dir}, nil
}

// Close closes the directory's handle.
func (d *Dir) Close() error { return unix.Close(d.fd) }

// Name is the path the directory was opened by.
func (d *Dir) Name() string { return d.name }

// Chmod sets the directory's own mode.
func (d *Dir) Chmod(mode fs.FileMode) error { return unix.Fchmod(d.fd, uint32(mode.Perm())) }

// Stat returns the directory's own status.
func (d *Dir) Stat() (unix.Stat_t, error) {
	var st unix.Stat_t
	err := unix.Fstat(d.fd, &st)
	return st, err
}

// clean checks rel and returns its components.
func clean(rel string) ([]string, error) {
	c := path.Clean(rel)
	if path.IsAbs(rel) || c == ".." || strings.HasPrefix(c, "../") {
		return nil, fmt.Errorf("%s: %w", rel, ErrOutside)
	}
	if c == "." {
		return nil, nil
	}
	return strings.Split(c, "/"), nil
}

func (d *Dir) pathErr(op, rel string, err error) error {
	switch {
	case errors.Is(err, unix.ELOOP):
		err = ErrSymlink
	case errors.Is(err, unix.EXDEV):
		err = ErrOutside
	case errors.Is(err, unix.ENOTDIR) && d.throughSymlink(rel):
		err = ErrSymlink
	}
	return &fs.PathError{Op: op, Path: path.Join(d.name, rel), Err: err}
}

// throughSymlink tells whether a component of rel is a symlink now (for the message of a refusal
// that the kernel reports as ENOTDIR).
func (d *Dir) throughSymlink(rel string) bool {
	parts, err := clean(rel)
	if err != nil {
		return false
	}
	fd, err := unix.Dup(d.fd)
	if err != nil {
		return false
	}
	defer func() { unix.Close(fd) }()
	for _, p := range parts {
		var st unix.Stat_t
		if unix.Fstatat(fd, p, &st, unix.AT_SYMLINK_NOFOLLOW) != nil {
			return false
		}
		if st.Mode&unix.S_IFMT == unix.S_IFLNK {
			return true
		}
		nfd, err := unix.Openat(fd, p, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return false
		}
		unix.Close(fd)
		fd = nfd
	}
	return false
}

// useOpenat2 is cleared the first time openat2 answers ENOSYS (an old kernel, or a seccomp filter
// that does not know it, as systemd 252's SystemCallFilter in lockstepd.service): the walk then
// opens one component at a time with O_NOFOLLOW, which follows no symlink either.
var useOpenat2 atomic.Bool

func init() { useOpenat2.Store(true) }

// openat opens rel beneath d, following no symlink.
func (d *Dir) openat(rel string, flags int) (int, error) {
	if rel == "" {
		rel = "."
	}
	for useOpenat2.Load() {
		fd, err := unix.Openat2(d.fd, rel, &unix.OpenHow{Flags: uint64(flags | unix.O_CLOEXEC | unix.O_NOFOLLOW), Resolve: resolve})
		switch {
		case errors.Is(err, unix.ENOSYS):
			useOpenat2.Store(false)
		case errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR): // a rename elsewhere raced the lookup
		default:
			return fd, err
		}
	}
	return d.walk(rel, flags)
}

// walk opens rel one component at a time from d, each with O_NOFOLLOW (the directories on the way
// with O_DIRECTORY, so a symlink among them fails).
func (d *Dir) walk(rel string, flags int) (int, error) {
	parts, err := clean(rel)
	if err != nil {
		return -1, err
	}
	if len(parts) == 0 {
		return unix.Openat(d.fd, ".", flags|unix.O_CLOEXEC, 0)
	}
	fd := d.fd
	defer func() {
		if fd != d.fd {
			unix.Close(fd)
		}
	}()
	for _, p := range parts[:len(parts)-1] {
		nfd, err := unix.Openat(fd, p, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return -1, err
		}
		if fd != d.fd {
			unix.Close(fd)
		}
		fd = nfd
	}
	return unix.Openat(fd, parts[len(parts)-1], flags|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
}

// OpenDir opens the existing directory rel beneath d.
func (d *Dir) OpenDir(rel string) (*Dir, error) {
	if _, err := clean(rel); err != nil {
		return nil, err
	}
	fd, err := d.openat(rel, unix.O_RDONLY|unix.O_DIRECTORY)
	if err != nil {
		return nil, d.pathErr("open", rel, err)
	}
	return &Dir{fd: fd, name: path.Join(d.name, rel)}, nil
}

// MkdirAll makes the directory rel beneath d and its missing parents, each with mode, one
// component at a time and following no symlink; it returns the directory opened. A component that
// is a symlink is refused with ErrSymlink.
func (d *Dir) MkdirAll(rel string, mode fs.FileMode) (*Dir, error) {
	parts, err := clean(rel)
	if err != nil {
		return nil, err
	}
	fd, err := unix.Dup(d.fd)
	if err != nil {
		return nil, err
	}
	done := ""
	for _, p := range parts {
		done = path.Join(done, p)
		made := false
		if err := unix.Mkdirat(fd, p, uint32(mode.Perm())); err == nil {
			made = true
		} else if !errors.Is(err, unix.EEXIST) {
			unix.Close(fd)
			return nil, d.pathErr("mkdir", done, err)
		}
		nfd, err := unix.Openat(fd, p, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
		unix.Close(fd)
		if err != nil {
			return nil, d.pathErr("mkdir", done, err)
		}
		fd = nfd
		if made {
			if err := unix.Fchmod(fd, uint32(mode.Perm())); err != nil { // past the umask
				unix.Close(fd)
				return nil, d.pathErr("chmod", done, err)
			}
		}
	}
	return &Dir{fd: fd, name: path.Join(d.name, rel)}, nil
}

// EnsurePath makes sure rel exists beneath d without running through a symlink: its parents are
// made directories as MkdirAll does; an existing last component of any type but a symlink is
// kept, a missing one is made a directory with mode. It is the check and the creation of a bind
// mount's source.
func (d *Dir) EnsurePath(rel string, mode fs.FileMode) error {
	parts, err := clean(rel)
	if err != nil {
		return err
	}
	if len(parts) == 0 {
		return nil
	}
	parent, err := d.MkdirAll(path.Join(parts[:len(parts)-1]...), mode)
	if err != nil {
		return err
	}
	defer parent.Close()
	last := parts[len(parts)-1]
	var st unix.Stat_t
	err = unix.Fstatat(parent.fd, last, &st, unix.AT_SYMLINK_NOFOLLOW)
	switch {
	case err == nil && st.Mode&unix.S_IFMT == unix.S_IFLNK:
		return d.pathErr("stat", rel, ErrSymlink)
	case err == nil:
		return nil
	case !errors.Is(err, unix.ENOENT):
		return d.pathErr("stat", rel, err)
	}
	sub, err := parent.MkdirAll(last, mode)
	if err != nil {
		return d.pathErr("mkdir", rel, errors.Unwrap(err))
	}
	return sub.Close()
}

// Lstat returns the status of rel beneath d without following a symlink at its end (its parents
// may not be symlinks).
func (d *Dir) Lstat(rel string) (unix.Stat_t, error) {
	var st unix.Stat_t
	parts, err := clean(rel)
	if err != nil {
		return st, err
	}
	if len(parts) == 0 {
		return d.Stat()
	}
	parent, err := d.OpenDir(path.Join(parts[:len(parts)-1]...))
	if err != nil {
		return st, err
	}
	defer parent.Close()
	if err := unix.Fstatat(parent.fd, parts[len(parts)-1], &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return st, d.pathErr("lstat", rel, err)
	}
	return st, nil
}

// Check returns ErrSymlink when rel beneath d exists and is a symlink or runs through one; nil
// for anything else, a missing path included.
func (d *Dir) Check(rel string) error {
	st, err := d.Lstat(rel)
	switch {
	case errors.Is(err, ErrSymlink):
		return err
	case err == nil && st.Mode&unix.S_IFMT == unix.S_IFLNK:
		return d.pathErr("lstat", rel, ErrSymlink)
	}
	return nil
}

// ReadFile reads the regular file rel beneath d, following no symlink; at most max bytes.
func (d *Dir) ReadFile(rel string, max int64) ([]byte, error) {
	if _, err := clean(rel); err != nil {
		return nil, err
	}
	fd, err := d.openat(rel, unix.O_RDONLY|unix.O_NONBLOCK)
	if err != nil {
		return nil, d.pathErr("open", rel, err)
	}
	f := os.NewFile(uintptr(fd), path.Join(d.name, rel))
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, d.pathErr("read", rel, fmt.Errorf("not a regular file (%s)", fi.Mode().Type()))
	}
	return io.ReadAll(io.LimitReader(f, max))
}

// WriteIfChanged makes rel beneath d hold data with mode and, when uid or gid is not -1, that
// owner. Missing parents are made with dirMode. When the file already holds exactly data with
// that mode it writes nothing (fixing only a wrong owner) and returns false. Otherwise it writes a
// temporary file in the same directory (O_EXCL, never through a symlink), gives it its owner and
// mode, fsyncs it, renames it over rel and fsyncs the directory: readers see the old file or the
// new, and the new is never readable by anyone its mode and owner do not allow. It refuses to
// replace anything but a regular file.
func (d *Dir) WriteIfChanged(rel string, data []byte, mode fs.FileMode, uid, gid int, dirMode fs.FileMode) (changed bool, err error) {
	parts, err := clean(rel)
	if err != nil {
		return false, err
	}
	if len(parts) == 0 {
		return false, d.pathErr("write", rel, errors.New("is the directory itself"))
	}
	parent, err := d.MkdirAll(path.Join(parts[:len(parts)-1]...), dirMode)
	if err != nil {
		return false, err
	}
	defer parent.Close()
	base := parts[len(parts)-1]
	var st unix.Stat_t
	err = unix.Fstatat(parent.fd, base, &st, unix.AT_SYMLINK_NOFOLLOW)
	switch {
	case err == nil:
		if st.Mode&unix.S_IFMT != unix.S_IFREG {
			return false, d.pathErr("write", rel, fmt.Errorf("not a regular file (%s)", typeOf(st.Mode)))
		}
		if fs.FileMode(st.Mode&0o7777) == mode.Perm() && st.Size == int64(len(data)) {
			if old, err := parent.ReadFile(base, int64(len(data))+1); err == nil && bytes.Equal(old, data) {
				if !owned(st, uid, gid) {
					if err := unix.Fchownat(parent.fd, base, uid, gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
						return false, d.pathErr("chown", rel, err)
					}
				}
				return false, nil
			}
		}
	case !errors.Is(err, unix.ENOENT):
		return false, d.pathErr("write", rel, err)
	}
	return true, parent.write(base, data, mode, uid, gid)
}

func typeOf(m uint32) fs.FileMode {
	switch m & unix.S_IFMT {
	case unix.S_IFDIR:
		return fs.ModeDir
	case unix.S_IFLNK:
		return fs.ModeSymlink
	case unix.S_IFIFO:
		return fs.ModeNamedPipe
	case unix.S_IFSOCK:
		return fs.ModeSocket
	case unix.S_IFCHR:
		return fs.ModeDevice | fs.ModeCharDevice
	case unix.S_IFBLK:
		return fs.ModeDevice
	}
	return fs.ModeIrregular
}

func owned(st unix.Stat_t, uid, gid int) bool {
	return (uid < 0 || int(st.Uid) == uid) && (gid < 0 || int(st.Gid) == gid)
}

// write writes base in d through a temporary file (see WriteIfChanged).
func (d *Dir) write(base string, data []byte, mode fs.FileMode, uid, gid int) (err error) {
	var tmp string
	var fd int
	for i := 0; ; i++ {
		n, _ := rand.Int(rand.Reader, big.NewInt(1e12))
		tmp = fmt.Sprintf(".%s.tmp-%d", base, n)
		fd, err = unix.Openat(d.fd, tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
		if err == nil {
			break
		}
		if !errors.Is(err, unix.EEXIST) || i > 100 {
			return d.pathErr("write", base, err)
		}
	}
	f := os.NewFile(uintptr(fd), path.Join(d.name, tmp))
	defer func() {
		if err != nil {
			f.Close()
			unix.Unlinkat(d.fd, tmp, 0)
		}
	}()
	if _, err = f.Write(data); err != nil {
		return d.pathErr("write", base, err)
	}
	if uid >= 0 || gid >= 0 {
		if err = unix.Fchown(fd, uid, gid); err != nil {
			return d.pathErr("chown", base, err)
		}
	}
	if err = unix.Fchmod(fd, uint32(mode.Perm())); err != nil {
		return d.pathErr("chmod", base, err)
	}
	if err = f.Sync(); err != nil {
		return d.pathErr("sync", base, err)
	}
	if err = f.Close(); err != nil {
		return d.pathErr("write", base, err)
	}
	if err = unix.Renameat(d.fd, tmp, d.fd, base); err != nil {
		return d.pathErr("rename", base, err)
	}
	if err := unix.Fsync(d.fd); err != nil {
		return d.pathErr("sync", ".", err)
	}
	return nil
}

// ChownTree gives rel beneath d and everything under it the owner uid:gid (-1 keeps one), changing
// only what differs, following no symlink (a symlink itself is given the owner). A missing rel is
// made a directory with mode. Every change is made relative to an open handle on the entry's
// parent, so an entry swapped for a symlink while the walk runs is chowned itself (harmless) or
// refused, never followed.
func (d *Dir) ChownTree(rel string, uid, gid int, mode fs.FileMode) error {
	if _, err := clean(rel); err != nil {
		return err
	}
	if _, err := d.Lstat(rel); errors.Is(err, unix.ENOENT) {
		sub, err := d.MkdirAll(rel, mode)
		if err != nil {
			return err
		}
		sub.Close()
	} else if err != nil {
		return err
	}
	fd, err := d.openat(rel, unix.O_PATH)
	if err != nil {
		return d.pathErr("open", rel, err)
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return d.pathErr("stat", rel, err)
	}
	if st.Mode&unix.S_IFMT == unix.S_IFLNK {
		return d.pathErr("chown", rel, ErrSymlink)
	}
	if !owned(st, uid, gid) {
		if err := unix.Fchownat(fd, "", uid, gid, unix.AT_EMPTY_PATH); err != nil {
			return d.pathErr("chown", rel, err)
		}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return nil
	}
	dfd, err := unix.Openat(fd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return d.pathErr("open", rel, err)
	}
	sub := &Dir{fd: dfd, name: path.Join(d.name, rel)}
	defer sub.Close()
	return sub.chownEntries(uid, gid)
}

func (d *Dir) chownEntries(uid, gid int) error {
	dup, err := unix.Dup(d.fd)
	if err != nil {
		return err
	}
	f := os.NewFile(uintptr(dup), d.name)
	names, err := f.Readdirnames(-1)
	f.Close()
	if err != nil {
		return err
	}
	for _, name := range names {
		var st unix.Stat_t
		if err := unix.Fstatat(d.fd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			if errors.Is(err, unix.ENOENT) {
				continue // removed by its app meanwhile
			}
			return d.pathErr("lstat", name, err)
		}
		if st.Mode&unix.S_IFMT == unix.S_IFDIR {
			cfd, err := unix.Openat(d.fd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
			if errors.Is(err, unix.ENOENT) {
				continue
			}
			if err != nil {
				return d.pathErr("open", name, err)
			}
			child := &Dir{fd: cfd, name: path.Join(d.name, name)}
			if err := unix.Fstat(cfd, &st); err == nil && !owned(st, uid, gid) {
				err = unix.Fchown(cfd, uid, gid)
			}
			if err == nil {
				err = child.chownEntries(uid, gid)
			} else {
				err = d.pathErr("chown", name, err)
			}
			child.Close()
			if err != nil {
				return err
			}
			continue
		}
		if !owned(st, uid, gid) {
			if err := unix.Fchownat(d.fd, name, uid, gid, unix.AT_SYMLINK_NOFOLLOW); err != nil && !errors.Is(err, unix.ENOENT) {
				return d.pathErr("chown", name, err)
			}
		}
	}
	return nil
}
