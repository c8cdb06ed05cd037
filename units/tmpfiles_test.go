package units

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/lockstep/lockstep/internal/testenv"
)

// The real systemd-tmpfiles, on a private root: lockstep.tmpfiles makes the dirs with their modes
// (the data root 0711), and running it again (postinst does, on every upgrade) leaves a directory
// an operator tightened as it is.
func TestTmpfilesMakesDirsAndKeepsTightenedOnes(t *testing.T) {
	testenv.Need(t, "systemd-tmpfiles")
	root := t.TempDir()
	conf, _ := filepath.Abs("lockstep.tmpfiles")
	run := func() {
		t.Helper()
		if out, err := exec.Command("systemd-tmpfiles", "--root="+root, "--create", conf).CombinedOutput(); err != nil {
			t.Fatalf("systemd-tmpfiles: %v\n%s", err, out)
		}
	}
	run()
	want := map[string]os.FileMode{"etc/lockstep/apps.d": 0o755, "etc/containers/systemd": 0o755, "var/lib/lockstep": 0o755, "var/lib/lockstep/apps": 0o711}
	for p, m := range want {
		fi, err := os.Stat(filepath.Join(root, p))
		if err != nil || fi.Mode().Perm() != m {
			t.Fatalf("%s: %v %v, want mode %o", p, fi, err, m)
		}
	}
	apps := filepath.Join(root, "var/lib/lockstep/apps")
	if err := os.Chmod(apps, 0o700); err != nil {
		t.Fatal(err)
	}
	run()
	if fi, _ := os.Stat(apps); fi.Mode().Perm() != 0o700 {
		t.Fatalf("the tightened data root was reset to %o", fi.Mode().Perm())
	}
}
