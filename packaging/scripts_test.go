package packaging

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lockstep/lockstep/internal/testenv"
)

// chroot is a throwaway root for running maintainer scripts: its /usr is an overlay over the
// host's (so the host's programs run, and what a script or the package writes there lands in
// base/up), everything else is its own, and it is entered through a private mount namespace.
type chroot struct {
	base string // root/, up/, work/
	root string
}

// runner mounts the overlay, /proc and /dev/null in the private mount namespace unshare made, then
// runs the command in the chroot with a clean environment. Nothing it mounts is seen by the host.
const runner = `set -e
b=$1; shift
mount -t overlay overlay -o "lowerdir=/usr,upperdir=$b/up,workdir=$b/work" "$b/root/usr"
mount -t proc proc "$b/root/proc"
mount --bind /dev/null "$b/root/dev/null"
exec chroot "$b/root" /usr/bin/env -i PATH=/stub:/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C "$@"
`

// stub stands in for systemctl, deb-systemd-helper, deb-systemd-invoke, systemd-sysusers,
// systemd-tmpfiles, groupadd and getent: it logs each call to /log and succeeds, except for the
// programs named in STUB_FAIL and, for `systemctl --quiet is-enabled|is-active UNIT` and
// `deb-systemd-helper --quiet was-enabled UNIT`, the units named in STUB_DISABLED or STUB_INACTIVE.
const stub = `#!/bin/sh
n=${0##*/}
echo "$n $*" >> /log
case " $STUB_FAIL " in *" $n "*) exit 1 ;; esac
if [ "$n $1 $2" = "getent group lockstep" ]; then grep -q '^lockstep:' /etc/group; exit; fi
case "$2" in is-enabled | was-enabled)
	case " $STUB_DISABLED " in *" $3 "*) exit 1 ;; esac
esac
if [ "$n $2" = "systemctl is-active" ]; then
	case " $STUB_INACTIVE " in *" $3 "*) exit 3 ;; esac
fi
exit 0
`

func newChroot(t *testing.T) *chroot {
	t.Helper()
	if os.Geteuid() != 0 {
		if testenv.Required() {
			t.Fatal("the maintainer script tests need root (mount namespaces, chroot)")
		}
		t.Skip("the maintainer script tests need root")
	}
	testenv.Need(t, "unshare", "chroot")
	for _, d := range []string{"/bin", "/sbin", "/lib"} {
		if l, err := os.Readlink(d); err != nil || l != "usr"+d {
			t.Skipf("%s is not a symlink to usr%s: the chroot needs a merged /usr", d, d)
		}
	}
	// Not t.TempDir(): its name has the test's, and a comma in it would split overlay's options.
	base, err := os.MkdirTemp("", "lockstep-chroot-")
	must(t, err)
	t.Cleanup(func() { os.RemoveAll(base) })
	c := &chroot{base: base}
	c.root = filepath.Join(c.base, "root")
	for _, d := range []string{"up", "work", "root/usr", "root/etc", "root/run", "root/var/lib", "root/tmp", "root/proc", "root/dev", "root/stub", "root/pkg"} {
		must(t, os.MkdirAll(filepath.Join(c.base, d), 0o755))
	}
	for _, l := range []string{"bin", "sbin", "lib", "lib64"} {
		if _, err := os.Lstat("/" + l); err == nil {
			must(t, os.Symlink("usr/"+l, filepath.Join(c.root, l)))
		}
	}
	// A minimal passwd and group: whether the host has a group lockstep does not matter here.
	for name, data := range map[string]string{
		"etc/passwd":        "root:x:0:0:root:/root:/bin/sh\n",
		"etc/group":         "root:x:0:\n",
		"etc/gshadow":       "root:*::\n",
		"etc/shadow":        "root:*:19000:0:99999:7:::\n",
		"etc/nsswitch.conf": "passwd: files\ngroup: files\nshadow: files\n",
		"dev/null":          "",
		"log":               "",
	} {
		must(t, os.WriteFile(filepath.Join(c.root, name), []byte(data), 0o644))
	}
	// The scripts as in packaging/scripts (TestDeb and TestRPM check that the packages ship these).
	for _, f := range []string{"deb/postinst", "deb/prerm", "deb/postrm", "rpm/post", "rpm/preun", "rpm/postun"} {
		data, err := os.ReadFile(filepath.Join("scripts", f))
		must(t, err)
		must(t, os.MkdirAll(filepath.Join(c.root, "pkg", filepath.Dir(f)), 0o755))
		must(t, os.WriteFile(filepath.Join(c.root, "pkg", f), data, 0o755))
	}
	return c
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// install puts the .deb's files into the chroot as dpkg would (without running any script).
func (c *chroot) install(t *testing.T, deb string) {
	t.Helper()
	x := filepath.Join(c.base, "x")
	run(t, "dpkg-deb", "-x", deb, x)
	must(t, os.Remove(c.base+"/up"))
	must(t, os.Rename(filepath.Join(x, "usr"), filepath.Join(c.base, "up")))
	run(t, "cp", "-a", filepath.Join(x, "etc", "."), filepath.Join(c.root, "etc"))
	must(t, os.RemoveAll(x))
}

// stubs replaces the system's tools with the recording stub and makes the chroot look like a host
// where systemd runs (running=true) or not.
func (c *chroot) stubs(t *testing.T, running bool) {
	t.Helper()
	must(t, os.WriteFile(filepath.Join(c.root, "stub", "stub"), []byte(stub), 0o755))
	for _, n := range []string{"systemctl", "deb-systemd-helper", "deb-systemd-invoke", "systemd-sysusers", "systemd-tmpfiles", "groupadd", "getent"} {
		must(t, os.Symlink("stub", filepath.Join(c.root, "stub", n)))
	}
	if running {
		must(t, os.MkdirAll(filepath.Join(c.root, "run/systemd/system"), 0o755))
	}
}

// sh runs a command line in the chroot (env are NAME=VALUE settings) and returns its output.
func (c *chroot) sh(t *testing.T, env []string, script string, args ...string) string {
	t.Helper()
	cmdArgs := append([]string{"--mount", "--propagation", "private", "/bin/sh", "-c", runner, "runner", c.base}, env...)
	cmdArgs = append(cmdArgs, "/bin/sh", "-c", script, "sh")
	cmdArgs = append(cmdArgs, args...)
	out, err := exec.Command("unshare", cmdArgs...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %q in the chroot: %v\n%s", script, args, err, out)
	}
	return string(out)
}

// script runs one maintainer script with its arguments, which must exit 0. A deb script gets the
// environment dpkg gives it (deb-systemd-helper refuses to run without DPKG_MAINTSCRIPT_PACKAGE).
func (c *chroot) script(t *testing.T, env []string, name string, args ...string) {
	t.Helper()
	if strings.HasPrefix(name, "deb/") {
		env = append([]string{"DPKG_MAINTSCRIPT_PACKAGE=lockstep", "DPKG_MAINTSCRIPT_NAME=" + strings.TrimPrefix(name, "deb/")}, env...)
	}
	c.sh(t, env, `s=$1; shift; exec /bin/sh "/pkg/$s" "$@"`, append([]string{name}, args...)...)
}

// log returns and clears the stub's calls.
func (c *chroot) log(t *testing.T) []string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(c.root, "log"))
	must(t, err)
	must(t, os.WriteFile(filepath.Join(c.root, "log"), nil, 0o644))
	if len(data) == 0 {
		return nil
	}
	return strings.Split(strings.TrimSpace(string(data)), "\n")
}

func (c *chroot) exists(p string) bool {
	_, err := os.Lstat(filepath.Join(c.root, p))
	return err == nil
}

func (c *chroot) write(t *testing.T, p, data string) {
	t.Helper()
	must(t, os.MkdirAll(filepath.Dir(filepath.Join(c.root, p)), 0o755))
	must(t, os.WriteFile(filepath.Join(c.root, p), []byte(data), 0o644))
}

func groupLines(t *testing.T, c *chroot) int {
	data, err := os.ReadFile(filepath.Join(c.root, "etc/group"))
	must(t, err)
	return strings.Count("\n"+string(data), "\nlockstep:")
}

// enabled is what systemctl is-enabled says of the socket and the timer, offline, in the chroot.
func (c *chroot) enabled(t *testing.T) string {
	return strings.Join(strings.Fields(c.sh(t, nil, "systemctl is-enabled lockstepd.socket lockstep-reconcile.timer || true")), " ")
}

// TestDebScriptsOffline installs the .deb's files into a chroot where systemd does not run (an image
// build) and runs its scripts with the real deb-systemd-helper, systemctl, systemd-sysusers and
// systemd-tmpfiles: the group is made, the socket and the timer are enabled by the preset (and an
// admin's preset that disables one wins), an admin's disabling survives an upgrade, removal masks
// them and a reinstall enables them again, purge forgets them and removes lockstep's state and
// keeps app data.
func TestDebScriptsOffline(t *testing.T) {
	b := packages(t)
	c := newChroot(t)
	c.install(t, b.deb)

	c.script(t, nil, "deb/postinst", "configure", "")
	if n := groupLines(t, c); n != 1 {
		t.Errorf("after postinst: %d lines for group lockstep in /etc/group, want 1", n)
	}
	if got := c.enabled(t); got != "enabled enabled" {
		t.Errorf("after postinst: socket and timer are %q, want enabled (90-lockstep.preset)", got)
	}
	c.script(t, nil, "deb/postinst", "configure", "") // idempotent
	if n := groupLines(t, c); n != 1 {
		t.Errorf("after a second postinst: %d lines for group lockstep, want 1", n)
	}

	// lockstepd's state, an app's data and the admin's manifest.
	state := []string{"/var/lib/lockstep/report.json", "/var/lib/lockstep/adopted.json", "/var/lib/lockstep/.report.json.tmp-123", "/run/lockstep/lockstep.sock",
		// issue 18: purge leaves no secret and no rollback record (which held env with secrets)
		"/var/lib/lockstep/rollback.json", "/var/lib/lockstep/.rollback.json.tmp-9", "/var/lib/lockstep/secrets/bitcoin-knots/rpc_password"}
	keep := []string{"/var/lib/lockstep/apps/demo-web/data/index.html", "/etc/lockstep/apps.d/demo-web.yaml"}
	for _, p := range append(state, keep...) {
		c.write(t, p, "x")
	}

	c.script(t, nil, "deb/prerm", "upgrade", "0.2.0")
	if got := c.enabled(t); got != "enabled enabled" {
		t.Errorf("prerm upgrade changed the units: %q", got)
	}
	// The admin disables the timer; an upgrade keeps it so.
	c.sh(t, nil, "systemctl disable lockstep-reconcile.timer")
	c.script(t, nil, "deb/postinst", "configure", "0.0.9")
	if got := c.enabled(t); got != "enabled disabled" {
		t.Errorf("after an upgrade: socket and timer are %q, want the admin's disabled timer kept", got)
	}
	c.sh(t, nil, "systemctl enable lockstep-reconcile.timer")

	c.script(t, nil, "deb/prerm", "remove")
	c.script(t, nil, "deb/postrm", "remove")
	if got := c.enabled(t); got != "masked masked" {
		t.Errorf("after postrm remove: socket and timer are %q, want masked", got)
	}
	// A reinstall from the config-files state (dpkg passes the last configured version).
	c.script(t, nil, "deb/postinst", "configure", "0.1.0")
	if got := c.enabled(t); got != "enabled enabled" {
		t.Errorf("after a reinstall: socket and timer are %q, want enabled again", got)
	}
	c.script(t, nil, "deb/prerm", "remove")
	c.script(t, nil, "deb/postrm", "remove")
	c.script(t, nil, "deb/postrm", "purge")
	if got := c.enabled(t); got != "disabled disabled" {
		t.Errorf("after purge: socket and timer are %q, want disabled (no symlinks, no mask)", got)
	}
	if out := c.sh(t, nil, "ls -A /var/lib/systemd/deb-systemd-helper-enabled 2>/dev/null; ls -A /var/lib/systemd/deb-systemd-helper-masked 2>/dev/null; true"); strings.Contains(out, "lockstep") {
		t.Errorf("purge left deb-systemd-helper's state: %s", out)
	}
	for _, p := range state {
		if c.exists(p) {
			t.Errorf("purge left %s", p)
		}
	}
	for _, p := range keep {
		if !c.exists(p) {
			t.Errorf("purge removed %s: app data and the admin's manifests must stay", p)
		}
	}

	// Without app data, manifests or the conffile (dpkg removes it before postrm purge), purge leaves
	// nothing of lockstep's directories; and it can run again.
	for _, p := range []string{"/var/lib/lockstep/apps", "/etc/lockstep/apps.d/demo-web.yaml", "/etc/lockstep/lockstepd.env"} {
		must(t, os.RemoveAll(filepath.Join(c.root, p)))
	}
	c.script(t, nil, "deb/postrm", "purge")
	for _, p := range []string{"/var/lib/lockstep", "/etc/lockstep", "/run/lockstep"} {
		if c.exists(p) {
			t.Errorf("purge left the empty %s", p)
		}
	}
}

// TestDebAdminPreset: an admin's preset that disables the timer, there before the first install,
// wins over the package's (deb-systemd-helper enables with `systemctl preset` the first time).
func TestDebAdminPreset(t *testing.T) {
	b := packages(t)
	c := newChroot(t)
	c.install(t, b.deb)
	c.write(t, "/etc/systemd/system-preset/10-admin.preset", "disable lockstep-reconcile.timer\n")
	c.script(t, nil, "deb/postinst", "configure", "")
	if got := c.enabled(t); got != "enabled disabled" {
		t.Errorf("after postinst: socket and timer are %q, want the admin's preset to keep the timer disabled", got)
	}
}

// TestRPMScriptsOffline does the same for the rpm scriptlets: %post 1 enables, %preun 1 (an
// upgrade) keeps, %preun 0 (removal) disables.
func TestRPMScriptsOffline(t *testing.T) {
	b := packages(t)
	c := newChroot(t)
	c.install(t, b.deb) // the same files; rpm itself cannot install into a chroot without its database

	c.script(t, nil, "rpm/post", "1")
	if n := groupLines(t, c); n != 1 {
		t.Errorf("after %%post 1: %d lines for group lockstep, want 1", n)
	}
	if got := c.enabled(t); got != "enabled enabled" {
		t.Errorf("after %%post 1: %q, want enabled", got)
	}
	c.script(t, nil, "rpm/post", "2")
	c.script(t, nil, "rpm/preun", "1")
	if got := c.enabled(t); got != "enabled enabled" {
		t.Errorf("%%preun 1 (upgrade) changed the units: %q", got)
	}
	c.script(t, nil, "rpm/postun", "1")
	c.script(t, nil, "rpm/preun", "0")
	if got := c.enabled(t); got != "disabled disabled" {
		t.Errorf("after %%preun 0: %q, want disabled", got)
	}
	c.script(t, nil, "rpm/postun", "0")
}

// TestScriptCalls runs each script with recording stubs, as under a running systemd and as where
// systemd is not PID 1, and checks every call it makes.
func TestScriptCalls(t *testing.T) {
	packages(t) // the shipped scripts are the ones under test (TestDeb, TestRPM)
	const (
		group     = "systemd-sysusers /usr/lib/sysusers.d/lockstep.conf"
		tmpfiles  = "systemd-tmpfiles --create /usr/lib/tmpfiles.d/lockstep.conf"
		reload    = "systemctl daemon-reload"
		dbusUp    = "systemctl --quiet is-active dbus.service"
		dbus      = "systemctl reload dbus.service"
		preset    = "systemctl preset lockstepd.socket lockstep-reconcile.timer"
		presetOff = "systemctl --no-reload preset lockstepd.socket lockstep-reconcile.timer"
		stop      = "systemctl stop lockstep-reconcile.timer lockstepd.socket lockstepd.service"
		disable   = "systemctl --no-reload disable lockstep-reconcile.timer lockstepd.socket lockstepd.service"
		restart   = "systemctl try-restart lockstepd.service"
		// The deb scripts: dh_installsystemd's way.
		debReload  = "systemctl --system daemon-reload"
		debStart   = "deb-systemd-invoke start lockstepd.socket lockstep-reconcile.timer"
		debRestart = "deb-systemd-invoke try-restart lockstepd.service"
		debStop    = "deb-systemd-invoke stop lockstep-reconcile.timer lockstepd.socket lockstepd.service"
		debMask    = "deb-systemd-helper mask lockstepd.socket lockstep-reconcile.timer"
		debPurge   = "deb-systemd-helper purge lockstepd.socket lockstep-reconcile.timer"
		debUnmask  = "deb-systemd-helper unmask lockstepd.socket lockstep-reconcile.timer"
	)
	start := []string{
		"systemctl --quiet is-enabled lockstepd.socket", "systemctl start lockstepd.socket",
		"systemctl --quiet is-enabled lockstep-reconcile.timer", "systemctl start lockstep-reconcile.timer",
	}
	// enable is postinst's enabling of one unit: enabled unless the admin disabled it before.
	enable := func(unit string, wasEnabled bool) []string {
		last := "deb-systemd-helper enable " + unit
		if !wasEnabled {
			last = "deb-systemd-helper update-state " + unit
		}
		return []string{"deb-systemd-helper unmask " + unit, "deb-systemd-helper --quiet was-enabled " + unit, last}
	}
	enableBoth := append(enable("lockstepd.socket", true), enable("lockstep-reconcile.timer", true)...)
	cat := func(parts ...any) []string {
		var out []string
		for _, p := range parts {
			switch p := p.(type) {
			case string:
				out = append(out, p)
			case []string:
				out = append(out, p...)
			}
		}
		return out
	}
	cases := []struct {
		name    string
		running bool
		env     []string
		script  string
		args    []string
		want    []string
	}{
		{"deb install", true, nil, "deb/postinst", []string{"configure", ""}, cat(group, tmpfiles, enableBoth, debReload, debStart)},
		{"deb install, timer disabled by the admin before", true, []string{"STUB_DISABLED=lockstep-reconcile.timer"}, "deb/postinst", []string{"configure", ""},
			cat(group, tmpfiles, enable("lockstepd.socket", true), enable("lockstep-reconcile.timer", false), debReload, debStart)},
		{"deb install, every systemd tool fails", true, []string{"STUB_FAIL=systemctl deb-systemd-helper deb-systemd-invoke"}, "deb/postinst", []string{"configure", ""},
			cat(group, tmpfiles, "deb-systemd-helper unmask lockstepd.socket", "deb-systemd-helper --quiet was-enabled lockstepd.socket", "deb-systemd-helper update-state lockstepd.socket",
				"deb-systemd-helper unmask lockstep-reconcile.timer", "deb-systemd-helper --quiet was-enabled lockstep-reconcile.timer", "deb-systemd-helper update-state lockstep-reconcile.timer",
				debReload, debStart)},
		{"deb install without systemd", false, nil, "deb/postinst", []string{"configure", ""}, cat(group, tmpfiles, enableBoth)},
		{"deb install, no systemd-sysusers", false, []string{"STUB_FAIL=systemd-sysusers"}, "deb/postinst", []string{"configure", ""},
			cat(group, "getent group lockstep", "groupadd -r lockstep", "getent group lockstep-read", tmpfiles, enableBoth)},
		{"deb upgrade", true, nil, "deb/postinst", []string{"configure", "0.0.9"}, cat(group, tmpfiles, enableBoth, debReload, debRestart)},
		{"deb upgrade without systemd", false, nil, "deb/postinst", []string{"configure", "0.0.9"}, cat(group, tmpfiles, enableBoth)},
		{"deb abort-upgrade", true, nil, "deb/postinst", []string{"abort-upgrade", "0.2.0"}, cat(enableBoth, debReload)},
		{"deb prerm upgrade", true, nil, "deb/prerm", []string{"upgrade", "0.2.0"}, nil},
		{"deb prerm remove", true, nil, "deb/prerm", []string{"remove"}, cat(debStop)},
		{"deb prerm remove, stop fails", true, []string{"STUB_FAIL=deb-systemd-invoke"}, "deb/prerm", []string{"remove"}, cat(debStop)},
		{"deb prerm remove without systemd", false, nil, "deb/prerm", []string{"remove"}, nil},
		{"deb postrm upgrade", true, nil, "deb/postrm", []string{"upgrade", "0.2.0"}, nil},
		{"deb postrm remove", true, nil, "deb/postrm", []string{"remove"}, cat(debReload, debMask)},
		{"deb postrm remove without systemd", false, nil, "deb/postrm", []string{"remove"}, cat(debMask)},
		{"deb postrm purge", true, nil, "deb/postrm", []string{"purge"}, cat(debPurge, debUnmask)},
		{"deb postrm purge, deb-systemd-helper fails", true, []string{"STUB_FAIL=deb-systemd-helper"}, "deb/postrm", []string{"purge"}, cat(debPurge, debUnmask)},
		{"rpm %post install", true, nil, "rpm/post", []string{"1"}, cat(group, tmpfiles, reload, dbusUp, dbus, preset, start)},
		{"rpm %post install without systemd", false, nil, "rpm/post", []string{"1"}, cat(group, tmpfiles, presetOff)},
		{"rpm %post install, no systemd-sysusers", false, []string{"STUB_FAIL=systemd-sysusers"}, "rpm/post", []string{"1"},
			cat(group, "getent group lockstep", "groupadd -r lockstep", "getent group lockstep-read", tmpfiles, presetOff)},
		{"rpm %post install, every systemctl call fails", true, []string{"STUB_FAIL=systemctl"}, "rpm/post", []string{"1"},
			cat(group, tmpfiles, reload, dbusUp, preset, "systemctl --quiet is-enabled lockstepd.socket", "systemctl --quiet is-enabled lockstep-reconcile.timer")},
		{"rpm %post upgrade", true, nil, "rpm/post", []string{"2"}, cat(group, tmpfiles, reload, dbusUp, dbus)},
		{"rpm %preun upgrade", true, nil, "rpm/preun", []string{"1"}, nil},
		{"rpm %preun remove", true, nil, "rpm/preun", []string{"0"}, cat(stop, disable)},
		{"rpm %preun remove without systemd", false, nil, "rpm/preun", []string{"0"}, cat(disable)},
		{"rpm %postun upgrade", true, nil, "rpm/postun", []string{"1"}, cat(reload, dbusUp, dbus, restart)},
		{"rpm %postun remove", true, nil, "rpm/postun", []string{"0"}, cat(reload, dbusUp, dbus)},
		{"rpm %postun without systemd", false, nil, "rpm/postun", []string{"1"}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := newChroot(t)
			c.stubs(t, tc.running)
			c.script(t, tc.env, tc.script, tc.args...)
			got := c.log(t)
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("%s %q made the calls\n  %s\nwant\n  %s", tc.script, tc.args, strings.Join(got, "\n  "), strings.Join(tc.want, "\n  "))
			}
		})
	}
}
