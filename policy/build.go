package policy

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// BuildContext returns the directory a build's context (relative to dir, the manifest's directory) is, with symlinks resolved, refusing one that
// is absolute, contains .., does not exist, or leads out of dir (the manifest's directory, resolved)
// through a symlink; and a Containerfile that leads out of the context. lockstepd uploads the whole
// context to the build: a context elsewhere would hand any host directory (the state dir's secrets,
// another app's data) to the image. The load path calls it, and images again right before a build,
// so a symlink swapped in after the load is refused too. No key of the policy allows it.
func BuildContext(dir, context, containerfile string) (string, error) {
	if filepath.IsAbs(context) || slices.Contains(strings.Split(context, "/"), "..") {
		return "", fmt.Errorf("%q must be a directory relative to the manifest's directory %s, without ..", context, dir)
	}
	realDir, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return "", fmt.Errorf("the manifest's directory %s: %v", dir, unwrap(err))
	}
	ctx, err := filepath.EvalSymlinks(filepath.Join(realDir, context))
	if err != nil {
		return "", fmt.Errorf("%q: %v", context, unwrap(err))
	}
	if !inside(ctx, realDir) {
		return "", fmt.Errorf("%q leads out of the manifest's directory %s (to %s, through a symlink)", context, realDir, ctx)
	}
	if fi, err := os.Stat(ctx); err != nil || !fi.IsDir() {
		return "", fmt.Errorf("%q is not a directory", context)
	}
	cf := containerfile
	if cf == "" {
		cf = "Containerfile"
	}
	if filepath.IsAbs(cf) || slices.Contains(strings.Split(cf, "/"), "..") {
		return "", fmt.Errorf("containerfile %q must be a path inside the build context", cf)
	}
	if real, err := filepath.EvalSymlinks(filepath.Join(ctx, cf)); err == nil && !inside(real, ctx) {
		return "", fmt.Errorf("containerfile %q leads out of the build context %s (to %s, through a symlink)", cf, ctx, real)
	}
	return ctx, nil
}

func inside(p, root string) bool {
	return p == root || strings.HasPrefix(p, strings.TrimSuffix(root, string(filepath.Separator))+string(filepath.Separator))
}
