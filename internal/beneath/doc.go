// Package beneath does file work inside a directory that other, less trusted parties can write to
// (an app's data dir, which its containers mount read-write), relative to an open handle on that
// directory: every path is resolved with openat2(RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS), so no
// symlink is ever followed and nothing outside the directory is reached, however the tree is
// changed while lockstepd works in it. Directories are made one component at a time (mkdirat,
// then opened without following), files written atomically through a temporary file made with
// O_EXCL|O_NOFOLLOW, given their owner and mode before the rename (fchown, fchmod), and ownership
// walks change each entry with fchownat(AT_SYMLINK_NOFOLLOW) relative to its parent's handle.
// A path that runs through a symlink is refused (ErrSymlink), never resolved. Where openat2 answers
// ENOSYS (an old kernel, or a seccomp filter that does not know it, as systemd 252's in
// lockstepd.service), paths are opened one component at a time with O_NOFOLLOW instead, which
// follows no symlink either.
package beneath
