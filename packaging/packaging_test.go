package packaging

// The package test builds the .deb and the .rpm for amd64 and arm64 exactly as make package does
// (scripts/package.sh, into a temp dir), then checks what they hold: every file at its path with
// its mode, owner and content, nothing else, the conffile, the dependencies, the maintainer scripts;
// and runs the maintainer scripts in a chroot over a private mount namespace (the host's /usr as an
// overlay's lower layer, everything else private), so that they cannot change the host:
//   - offline, as in an image build, with the real systemctl, systemd-sysusers and systemd-tmpfiles;
//   - as under a running systemd, with recording stubs, to check each call per install, upgrade,
//     removal and purge (deb) and per rpm $1.
// Installing the .deb for real (dpkg -i, a running lockstepd) is the end-to-end test's job.

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lockstep/lockstep/internal/testenv"
)

// epoch is SOURCE_DATE_EPOCH for the build: every file in the packages must carry it.
const epoch = 1700000000

// unitFiles maps each file the packages take from units/ to where it is installed.
var unitFiles = map[string]string{
	"lockstepd.service":                "/usr/lib/systemd/system/lockstepd.service",
	"lockstepd.socket":                 "/usr/lib/systemd/system/lockstepd.socket",
	"lockstep-reconcile.service":       "/usr/lib/systemd/system/lockstep-reconcile.service",
	"lockstep-reconcile.timer":         "/usr/lib/systemd/system/lockstep-reconcile.timer",
	"user/lockstepd.service":           "/usr/lib/systemd/user/lockstepd.service",
	"user/lockstepd.socket":            "/usr/lib/systemd/user/lockstepd.socket",
	"user/lockstep-reconcile.service":  "/usr/lib/systemd/user/lockstep-reconcile.service",
	"user/lockstep-reconcile.timer":    "/usr/lib/systemd/user/lockstep-reconcile.timer",
	"org.lockstep.Reconciler1.conf":    "/usr/share/dbus-1/system.d/org.lockstep.Reconciler1.conf",
	"org.lockstep.Reconciler1.service": "/usr/share/dbus-1/system-services/org.lockstep.Reconciler1.service",
	"lockstep.sysusers":                "/usr/lib/sysusers.d/lockstep.conf",
	"lockstep.tmpfiles":                "/usr/lib/tmpfiles.d/lockstep.conf",
	"lockstepd.env":                    "/etc/lockstep/lockstepd.env",
	"90-lockstep.preset":               "/usr/lib/systemd/system-preset/90-lockstep.preset",
	"org.lockstep.policy":              "/usr/share/polkit-1/actions/org.lockstep.policy",
	"lockstep.rules":                   "/usr/share/polkit-1/rules.d/50-lockstep.rules",
}

// placeholders stand in for files of units/ not written yet: minimal but valid, with the [Install]
// sections the preset needs, so the scripts' enabling can be checked.
var placeholders = map[string]string{
	"lockstepd.service":                "[Unit]\nDescription=lockstep (placeholder)\n\n[Service]\nType=notify\nExecStart=/usr/bin/lockstepd\n",
	"lockstepd.socket":                 "[Socket]\nListenStream=/run/lockstep/lockstep.sock\n\n[Install]\nWantedBy=sockets.target\n",
	"lockstep-reconcile.service":       "[Service]\nType=oneshot\nExecStart=/bin/true\n",
	"lockstep-reconcile.timer":         "[Timer]\nOnUnitActiveSec=30s\n\n[Install]\nWantedBy=timers.target\n",
	"user/lockstepd.service":           "[Service]\nType=notify\nExecStart=/usr/bin/lockstepd --bus session\n",
	"user/lockstepd.socket":            "[Socket]\nListenStream=%t/lockstep/lockstep.sock\n\n[Install]\nWantedBy=sockets.target\n",
	"user/lockstep-reconcile.service":  "[Service]\nType=oneshot\nExecStart=/bin/true\n",
	"user/lockstep-reconcile.timer":    "[Timer]\nOnUnitActiveSec=30s\n\n[Install]\nWantedBy=timers.target\n",
	"org.lockstep.Reconciler1.conf":    "<busconfig/>\n",
	"org.lockstep.Reconciler1.service": "[D-BUS Service]\nName=org.lockstep.Reconciler1\nExec=/bin/false\nUser=root\nSystemdService=lockstepd.service\n",
	"lockstep.sysusers":                "g lockstep -\n",
	"lockstep.tmpfiles":                "d /var/lib/lockstep 0755 root root -\n",
	"lockstepd.env":                    "LOCKSTEPD_OPTS=\n",
	"90-lockstep.preset":               "enable lockstepd.socket\nenable lockstep-reconcile.timer\n",
	"org.lockstep.policy":              "<policyconfig/>\n",
	"lockstep.rules":                   "// placeholder\n",
}

// build is the one package build all tests share.
type build struct {
	dir      string // temp dir: units/, man/, bin/, dist/
	top      string // the repository
	version  string
	deb, rpm string
	binDir   string
	// The arm64 packages, built in the same run as make package does.
	debArm, rpmArm string
	unitsDir       string
	manDir         string
}

var (
	buildOnce sync.Once
	built     *build
	buildErr  error
	tmpRoot   string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if tmpRoot != "" {
		os.RemoveAll(tmpRoot)
	}
	os.Exit(code)
}

// packages builds the packages once (a minute or two on two cores), or skips in -short mode.
func packages(t *testing.T) *build {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the packages; not in -short mode")
	}
	testenv.Need(t, "dpkg-deb", "rpm", "go")
	buildOnce.Do(func() { built, buildErr = makePackages() })
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return built
}

func makePackages() (*build, error) {
	var err error
	if tmpRoot, err = os.MkdirTemp("", "lockstep-packaging-"); err != nil {
		return nil, err
	}
	top, err := filepath.Abs("..")
	if err != nil {
		return nil, err
	}
	b := &build{dir: tmpRoot, top: top, unitsDir: filepath.Join(tmpRoot, "units"), manDir: filepath.Join(top, "docs", "man")}
	v, err := os.ReadFile(filepath.Join(top, "VERSION"))
	if err != nil {
		return nil, err
	}
	b.version = strings.TrimSpace(string(v))

	// The real files of units/ where they exist, placeholders for the others.
	var stand []string
	for name := range unitFiles {
		data, err := os.ReadFile(filepath.Join(top, "units", name))
		if os.IsNotExist(err) {
			data, err = []byte(placeholders[name]), nil
			stand = append(stand, name)
		}
		if err != nil {
			return nil, err
		}
		dst := filepath.Join(b.unitsDir, name)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return nil, err
		}
		if err := os.WriteFile(dst, data, 0o644); err != nil {
			return nil, err
		}
	}
	sort.Strings(stand)
	if len(stand) > 0 {
		fmt.Printf("packaging test: placeholders for units/ files not written yet: %s\n", strings.Join(stand, " "))
	}
	// The man pages, or a placeholder so that the path that packages them is tested.
	if m, _ := filepath.Glob(filepath.Join(b.manDir, "*.1")); len(m) == 0 {
		b.manDir = filepath.Join(tmpRoot, "man")
		if err := os.MkdirAll(b.manDir, 0o755); err != nil {
			return nil, err
		}
		if err := os.WriteFile(filepath.Join(b.manDir, "lockstepctl.1"), []byte(".TH LOCKSTEPCTL 1\n.SH NAME\nlockstepctl \\- placeholder\n"), 0o644); err != nil {
			return nil, err
		}
	}

	cmd := exec.Command(filepath.Join(top, "scripts", "package.sh"))
	cmd.Env = append(os.Environ(),
		"PKG_ARCHES=amd64 arm64", "PKG_FORMATS=deb rpm",
		"DIST="+filepath.Join(tmpRoot, "dist"), "BIN_ROOT="+filepath.Join(tmpRoot, "bin"),
		"UNITS_DIR="+b.unitsDir, "MAN_DIR="+b.manDir, "VERSION=",
		fmt.Sprintf("SOURCE_DATE_EPOCH=%d", epoch))
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("scripts/package.sh: %v\n%s", err, out)
	}
	b.binDir = filepath.Join(tmpRoot, "bin", "linux-amd64")
	b.deb = filepath.Join(tmpRoot, "dist", "lockstep_"+b.version+"_amd64.deb")
	b.rpm = filepath.Join(tmpRoot, "dist", "lockstep-"+b.version+"-1.x86_64.rpm")
	b.debArm = filepath.Join(tmpRoot, "dist", "lockstep_"+b.version+"_arm64.deb")
	b.rpmArm = filepath.Join(tmpRoot, "dist", "lockstep-"+b.version+"-1.aarch64.rpm")
	for _, p := range []string{b.deb, b.rpm, b.debArm, b.rpmArm} {
		if _, err := os.Stat(p); err != nil {
			return nil, fmt.Errorf("package.sh did not make %s: %v", filepath.Base(p), err)
		}
	}
	return b, nil
}

// entry is one path the packages must hold.
type entry struct {
	mode string // as ls prints it: -rw-r--r--, drwxr-xr-x
	src  string // absolute source path for files; empty for directories
}

// expected lists every path the package of a format ("deb" or "rpm") must hold, and nothing else may
// be in it (besides the parent directories of these).
func (b *build) expected(t *testing.T, format string) map[string]entry {
	t.Helper()
	want := map[string]entry{
		"/usr/bin/lockstepd":                           {"-rwxr-xr-x", filepath.Join(b.binDir, "lockstepd")},
		"/usr/bin/lockstepctl":                         {"-rwxr-xr-x", filepath.Join(b.binDir, "lockstepctl")},
		"/etc/lockstep/apps.d":                         {"drwxr-xr-x", ""},
		"/etc/lockstep/policy.yaml":                    {"-rw-r--r--", filepath.Join(b.top, "packaging", "policy.yaml")},
		"/usr/share/lockstep/catalog":                  {"drwxr-xr-x", ""},
		"/usr/share/lockstep/examples/demo":            {"drwxr-xr-x", ""},
		"/usr/share/lockstep/examples/demo/demo-built": {"drwxr-xr-x", ""},
		"/usr/share/lockstep/examples/demo/node":       {"drwxr-xr-x", ""},
		"/usr/share/doc/lockstep/README.md":            {"-rw-r--r--", filepath.Join(b.top, "README.md")},
		// lockstepctl's completions (packaging/completions: make docs)
		"/usr/share/bash-completion/completions/lockstepctl":    {"-rw-r--r--", filepath.Join(b.top, "packaging", "completions", "lockstepctl.bash")},
		"/usr/share/fish/vendor_completions.d/lockstepctl.fish": {"-rw-r--r--", filepath.Join(b.top, "packaging", "completions", "lockstepctl.fish")},
	}
	zsh := filepath.Join(b.top, "packaging", "completions", "_lockstepctl")
	switch format {
	case "deb":
		want["/usr/share/zsh/vendor-completions/_lockstepctl"] = entry{"-rw-r--r--", zsh}
		want["/usr/share/doc/lockstep/copyright"] = entry{"-rw-r--r--", filepath.Join(b.top, "packaging", "copyright")}
		want["/usr/share/doc/lockstep/changelog.gz"] = entry{"-rw-r--r--", filepath.Join(b.top, "packaging", "changelog")}
		want["/usr/share/lintian/overrides/lockstep"] = entry{"-rw-r--r--", filepath.Join(b.top, "packaging", "lintian-overrides")}
	case "rpm":
		want["/usr/share/zsh/site-functions/_lockstepctl"] = entry{"-rw-r--r--", zsh}
		want["/usr/share/licenses/lockstep/LICENSE"] = entry{"-rw-r--r--", filepath.Join(b.top, "LICENSE")}
	}
	for name, dst := range unitFiles {
		want[dst] = entry{"-rw-r--r--", filepath.Join(b.unitsDir, name)}
	}
	add := func(pattern, dstDir string) {
		m, err := filepath.Glob(filepath.Join(b.top, pattern))
		if err != nil || len(m) == 0 {
			t.Fatalf("%s matches nothing (%v)", pattern, err)
		}
		for _, src := range m {
			mode := "-rw-r--r--"
			if strings.HasSuffix(src, ".sh") {
				mode = "-rwxr-xr-x" // the demo's scripts are executable
			}
			want[dstDir+"/"+filepath.Base(src)] = entry{mode, src}
		}
	}
	add("docs/*.md", "/usr/share/doc/lockstep")
	add("catalog/demo/*.yaml", "/usr/share/lockstep/examples/demo")
	add("catalog/demo/demo-built/*", "/usr/share/lockstep/examples/demo/demo-built")
	add("catalog/demo/node/*", "/usr/share/lockstep/examples/demo/node")
	for _, section := range []string{"1", "8"} {
		mans, _ := filepath.Glob(filepath.Join(b.manDir, "*."+section))
		for _, m := range mans {
			// Gzipped; the content is compared after gunzip.
			want["/usr/share/man/man"+section+"/"+filepath.Base(m)+".gz"] = entry{"-rw-r--r--", m}
		}
	}
	return want
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), "TZ=UTC", "LC_ALL=C")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s%s", name, strings.Join(args, " "), err, out, stderr.Bytes())
	}
	return string(out)
}

// sameContent tells whether the packaged file (gunzipped for a man page) is its source.
func sameContent(t *testing.T, packaged, src string) bool {
	t.Helper()
	got, err := os.ReadFile(packaged)
	if err != nil {
		t.Fatal(err)
	}
	if strings.HasSuffix(packaged, ".gz") {
		got = []byte(run(t, "gzip", "-dc", packaged))
	}
	want, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Equal(got, want)
}

func TestDeb(t *testing.T) {
	b := packages(t)
	field := func(f string) string { return strings.TrimSpace(run(t, "dpkg-deb", "-f", b.deb, f)) }
	for f, want := range map[string]string{
		"Package": "lockstep", "Version": b.version, "Architecture": "amd64",
		"Depends":    "netavark, aardvark-dns, iptables | netavark (>= 1.12~), nftables | netavark (<< 1.12~), podman (>= 4.3), dbus, systemd, procps",
		"Recommends": "catatonit, uidmap, slirp4netns, passt, dbus-user-session, polkitd",
		"Maintainer": "lockstep maintainers <maintainers@lockstep.invalid>",
	} {
		if got := field(f); got != want {
			t.Errorf("%s: %q, want %q", f, got, want)
		}
	}

	// Every path with its mode and owner, nothing unexpected, nothing under /var or /run (app data
	// and state are never the package's).
	want := b.expected(t, "deb")
	seen := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(run(t, "dpkg-deb", "--contents", b.deb)), "\n") {
		// -rw-r--r-- root/root      28 2023-11-14 22:13 ./etc/lockstep/lockstepd.env
		f := strings.Fields(line)
		if len(f) != 6 {
			t.Errorf("unexpected line in dpkg-deb --contents: %q", line)
			continue
		}
		mode, owner, date, p := f[0], f[1], f[3]+" "+f[4], strings.TrimSuffix(strings.TrimPrefix(f[5], "."), "/")
		if owner != "root/root" {
			t.Errorf("%s: owner %s, want root/root", p, owner)
		}
		if wantDate := time.Unix(epoch, 0).UTC().Format("2006-01-02 15:04"); date != wantDate {
			t.Errorf("%s: mtime %s, want SOURCE_DATE_EPOCH's %s", p, date, wantDate)
		}
		if strings.HasPrefix(p, "/var") || strings.HasPrefix(p, "/run") {
			t.Errorf("%s: the package must not ship anything under /var or /run", p)
		}
		e, ok := want[p]
		switch {
		case ok:
			seen[p] = true
			if mode != e.mode {
				t.Errorf("%s: mode %s, want %s", p, mode, e.mode)
			}
		case mode == "drwxr-xr-x" && p != "" && isParent(p, want):
		case p == "":
		default:
			t.Errorf("unexpected %s %s in the .deb", mode, p)
		}
	}
	for p := range want {
		if !seen[p] {
			t.Errorf("%s is missing from the .deb", p)
		}
	}

	// Content: each file is its source, byte for byte.
	root := t.TempDir()
	run(t, "dpkg-deb", "-x", b.deb, root)
	for p, e := range want {
		if e.src != "" && !sameContent(t, filepath.Join(root, p), e.src) {
			t.Errorf("%s differs from %s", p, e.src)
		}
	}
	// The programs are static amd64 executables (no cgo, no interpreter).
	for _, p := range []string{"/usr/bin/lockstepd", "/usr/bin/lockstepctl"} {
		f, err := elf.Open(filepath.Join(root, p))
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		if f.Machine != elf.EM_X86_64 {
			t.Errorf("%s: machine %v, want x86-64", p, f.Machine)
		}
		for _, prog := range f.Progs {
			if prog.Type == elf.PT_INTERP {
				t.Errorf("%s is dynamically linked (built with cgo?)", p)
			}
		}
		f.Close()
	}

	// Control: the conffile, the scripts as written in packaging/scripts/deb and valid sh.
	ctl := t.TempDir()
	run(t, "dpkg-deb", "-e", b.deb, ctl)
	if got, err := os.ReadFile(filepath.Join(ctl, "conffiles")); err != nil || string(got) != "/etc/lockstep/lockstepd.env\n/etc/lockstep/policy.yaml\n" {
		t.Errorf("conffiles: %q (%v), want exactly /etc/lockstep/lockstepd.env and /etc/lockstep/policy.yaml", got, err)
	}
	for _, s := range []string{"postinst", "prerm", "postrm"} {
		p := filepath.Join(ctl, s)
		fi, err := os.Stat(p)
		if err != nil {
			t.Errorf("maintainer script %s missing: %v", s, err)
			continue
		}
		if fi.Mode().Perm() != 0o755 {
			t.Errorf("%s: mode %v, want 0755", s, fi.Mode().Perm())
		}
		if !sameContent(t, p, filepath.Join(b.top, "packaging", "scripts", "deb", s)) {
			t.Errorf("%s differs from packaging/scripts/deb/%s", s, s)
		}
		run(t, "sh", "-n", p)
	}
	for _, s := range []string{"preinst", "config", "templates"} {
		if _, err := os.Stat(filepath.Join(ctl, s)); err == nil {
			t.Errorf("unexpected %s in the control archive", s)
		}
	}
}

// isParent tells whether dir is a parent directory of a wanted path.
func isParent(dir string, want map[string]entry) bool {
	for p := range want {
		if strings.HasPrefix(p, dir+"/") {
			return true
		}
	}
	return false
}

func TestRPM(t *testing.T) {
	b := packages(t)
	q := func(format string) string { return run(t, "rpm", "-qp", "--qf", format, b.rpm) }
	if got, want := q("%{NAME} %{VERSION} %{RELEASE} %{ARCH} %{LICENSE}"), "lockstep "+b.version+" 1 x86_64 Apache-2.0"; got != want {
		t.Errorf("rpm header: %q, want %q", got, want)
	}
	requires := run(t, "rpm", "-qp", "--requires", b.rpm)
	for _, r := range []string{"netavark", "aardvark-dns", "podman >= 4.3", "dbus", "systemd"} {
		if !strings.Contains("\n"+requires, "\n"+r+"\n") {
			t.Errorf("requires lacks %q:\n%s", r, requires)
		}
	}
	if got := run(t, "rpm", "-qp", "--recommends", b.rpm); got != "catatonit\nslirp4netns\npasst\npolkit\n" {
		t.Errorf("recommends: %q, want catatonit, slirp4netns, passt, polkit", got)
	}

	want := b.expected(t, "rpm")
	seen := map[string]bool{}
	sc := bufio.NewScanner(strings.NewReader(q("[%{FILEMODES:perms} %{FILEUSERNAME}:%{FILEGROUPNAME} %{FILEMTIMES} %{FILEFLAGS:fflags}. %{FILEDIGESTS}. %{FILENAMES}\n]")))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 6 {
			t.Errorf("unexpected file line %q", sc.Text())
			continue
		}
		mode, owner, mtime, flags, digest, p := f[0], f[1], f[2], strings.TrimSuffix(f[3], "."), strings.TrimSuffix(f[4], "."), f[5]
		e, ok := want[p]
		if !ok {
			if !(mode == "drwxr-xr-x" && isParent(p, want)) {
				t.Errorf("unexpected %s %s in the .rpm", mode, p)
			}
			continue
		}
		seen[p] = true
		if mode != e.mode || owner != "root:root" {
			t.Errorf("%s: %s %s, want %s root:root", p, mode, owner, e.mode)
		}
		if mtime != fmt.Sprint(epoch) {
			t.Errorf("%s: mtime %s, want %d", p, mtime, epoch)
		}
		wantFlags := ""
		switch p {
		case "/etc/lockstep/lockstepd.env", "/etc/lockstep/policy.yaml":
			wantFlags = "cn" // %config(noreplace)
		case "/usr/share/licenses/lockstep/LICENSE":
			wantFlags = "l" // %license
		}
		if flags != wantFlags {
			t.Errorf("%s: flags %q, want %q", p, flags, wantFlags)
		}
		if e.src != "" && !strings.HasSuffix(p, ".gz") {
			data, err := os.ReadFile(e.src)
			if err != nil {
				t.Fatal(err)
			}
			if sum := sha256.Sum256(data); digest != hex.EncodeToString(sum[:]) {
				t.Errorf("%s: digest %s is not %s's", p, digest, e.src)
			}
		}
	}
	for p := range want {
		if !seen[p] {
			t.Errorf("%s is missing from the .rpm", p)
		}
	}
	if got := strings.TrimSpace(run(t, "rpm", "-qp", "--configfiles", b.rpm)); got != "/etc/lockstep/lockstepd.env\n/etc/lockstep/policy.yaml" {
		t.Errorf("config files: %q", got)
	}

	// Scriptlets: %post, %preun and %postun as written in packaging/scripts/rpm, run by /bin/sh, valid
	// sh; no %pre.
	dir := t.TempDir()
	for tag, file := range map[string]string{"POSTIN": "post", "PREUN": "preun", "POSTUN": "postun"} {
		if prog := q("%{" + tag + "PROG}"); prog != "/bin/sh" {
			t.Errorf("%%%s runs with %q, want /bin/sh", file, prog)
		}
		p := filepath.Join(dir, file)
		if err := os.WriteFile(p, []byte(q("%{"+tag+"}")), 0o644); err != nil {
			t.Fatal(err)
		}
		if !sameContent(t, p, filepath.Join(b.top, "packaging", "scripts", "rpm", file)) {
			t.Errorf("%%%s differs from packaging/scripts/rpm/%s", file, file)
		}
		run(t, "sh", "-n", p)
	}
	if pre := q("%{PREIN}"); pre != "(none)" {
		t.Errorf("unexpected %%pre: %q", pre)
	}
}

// TestArm64 checks the arm64 packages of the same build: their architecture fields, the same file
// list as the amd64 .deb, and static aarch64 programs (cross-compiled without cgo). They are not
// run: this machine has no arm64 CPU or emulator.
func TestArm64(t *testing.T) {
	b := packages(t)
	if got := strings.TrimSpace(run(t, "dpkg-deb", "-f", b.debArm, "Architecture")); got != "arm64" {
		t.Errorf("deb Architecture %q, want arm64", got)
	}
	if got := strings.TrimSpace(run(t, "rpm", "-qp", "--qf", "%{ARCH}", b.rpmArm)); got != "aarch64" {
		t.Errorf("rpm arch %q, want aarch64", got)
	}
	paths := func(deb string) string {
		var out []string
		for _, line := range strings.Split(strings.TrimSpace(run(t, "dpkg-deb", "--contents", deb)), "\n") {
			if f := strings.Fields(line); len(f) == 6 {
				out = append(out, f[0]+" "+f[5])
			}
		}
		sort.Strings(out)
		return strings.Join(out, "\n")
	}
	if a, r := paths(b.deb), paths(b.debArm); a != r {
		t.Errorf("the arm64 .deb holds other paths than the amd64 one:\n%s\n---\n%s", r, a)
	}
	root := t.TempDir()
	run(t, "dpkg-deb", "-x", b.debArm, root)
	for _, p := range []string{"/usr/bin/lockstepd", "/usr/bin/lockstepctl"} {
		f, err := elf.Open(filepath.Join(root, p))
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		if f.Machine != elf.EM_AARCH64 {
			t.Errorf("%s: machine %v, want aarch64", p, f.Machine)
		}
		for _, prog := range f.Progs {
			if prog.Type == elf.PT_INTERP {
				t.Errorf("%s is dynamically linked (built with cgo?)", p)
			}
		}
		f.Close()
	}
}
