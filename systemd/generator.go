package systemd

import (
	"os"
	"path/filepath"
)

// DetectGenerator finds podman's Quadlet generator for a scope, or "" when the host has none
// (podman before 4.4). It resolves the generator symlink so that it can be run with -dryrun.
func DetectGenerator(scope Scope) string {
	name, dirs := "podman-system-generator", []string{"/run/systemd/system-generators", "/etc/systemd/system-generators",
		"/usr/local/lib/systemd/system-generators", "/usr/lib/systemd/system-generators", "/lib/systemd/system-generators"}
	if scope == User {
		name, dirs = "podman-user-generator", []string{"/run/systemd/user-generators", "/etc/systemd/user-generators",
			"/usr/local/lib/systemd/user-generators", "/usr/lib/systemd/user-generators", "/lib/systemd/user-generators"}
	}
	for _, d := range dirs {
		p := filepath.Join(d, name)
		if real, err := filepath.EvalSymlinks(p); err == nil && real != "/dev/null" {
			if fi, err := os.Stat(real); err == nil && fi.Mode().IsRegular() {
				return real
			}
		}
	}
	return ""
}
