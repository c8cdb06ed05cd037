package hooks

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lockstep/lockstep/manifest"
	"github.com/lockstep/lockstep/policy"
)

// fixture loads one app (hooks given as YAML lines) with its templates, under a fresh data root.
type fixture struct {
	roots manifest.Roots
	set   *manifest.Set
	app   *manifest.Loaded
}

func newFixture(t *testing.T, base string, user string, hooks string, templates map[string]string) *fixture {
	t.Helper()
	appsDir := filepath.Join(base, "apps.d")
	// The operator's policy grants victim user 0 (TestDataDirIs0700Or0711ForAContainerUser runs it as 0:0).
	roots := manifest.Roots{DataRoot: filepath.Join(base, "data"), Policy: &policy.Policy{Apps: map[string]policy.Grants{"victim": {RootUser: true}}}}
	if err := os.MkdirAll(appsDir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, text := range templates {
		if err := os.WriteFile(filepath.Join(appsDir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	userLine := ""
	if user != "" {
		userLine = "    user: \"" + user + "\"\n"
	}
	y := "app:\n  id: victim\n  name: Victim\n  version: 1.0.0\n  exports:\n    pw: {secret: true}\n    host: {value: h}\n" +
		"  container:\n    image: localhost/x:1\n" + userLine +
		"  hooks:\n    pre_start:\n" + hooks
	file := filepath.Join(appsDir, "victim.yaml")
	if err := os.WriteFile(file, []byte(y), 0o644); err != nil {
		t.Fatal(err)
	}
	set, err := manifest.LoadDir(appsDir, roots)
	if err != nil {
		t.Fatal(err)
	}
	app := set.ByID("victim")
	if app == nil {
		t.Fatalf("app not loaded: %+v", set)
	}
	return &fixture{roots: roots, set: set, app: app}
}

func value(_ *manifest.Loaded, name string) (string, error) { return "v-" + name, nil }

// run runs hook i as a pass does: Render (in the observation), then Apply (in the executor).
func (f *fixture) run(t *testing.T, i int) (bool, error) {
	t.Helper()
	out, err := Render(f.set, f.app, f.app.Hooks.PreStart[i], f.roots, value)
	if err != nil {
		return false, err
	}
	return out.Changed, Apply(out)
}

func mode(t *testing.T, p string) fs.FileMode {
	t.Helper()
	fi, err := os.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode()
}

func TestOutputsThatUseSecretOrDepDefaultTo0600(t *testing.T) {
	f := newFixture(t, t.TempDir(), "", `      - {name: plain, template: plain.tmpl, path: plain.conf}
      - {name: withsecret, template: secret.tmpl, path: secret.conf}
      - {name: explicit, template: secret.tmpl, path: open.conf, mode: "0644"}
`, map[string]string{"plain.tmpl": "id={{.ID}} host={{export \"host\"}}\n", "secret.tmpl": "pw={{secret \"pw\"}}\n"})
	for i := range 3 {
		if _, err := f.run(t, i); err != nil {
			t.Fatal(err)
		}
	}
	dir := f.roots.AppData("victim")
	for file, want := range map[string]fs.FileMode{"plain.conf": 0o644, "secret.conf": 0o600, "open.conf": 0o644} {
		if got := mode(t, filepath.Join(dir, file)).Perm(); got != want {
			t.Errorf("%s: mode %o, want %o", file, got, want)
		}
	}
}

func TestDataDirIs0700Or0711ForAContainerUser(t *testing.T) {
	for user, want := range map[string]fs.FileMode{"": 0o700, "0:0": 0o700, "1000:1000": 0o711} {
		f := newFixture(t, t.TempDir(), user, "      - {name: c, template: c.tmpl, path: c.conf}\n", map[string]string{"c.tmpl": "x\n"})
		if _, err := f.run(t, 0); err != nil {
			t.Fatal(err)
		}
		if got := mode(t, f.roots.AppData("victim")).Perm(); got != want {
			t.Errorf("user %q: data dir mode %o, want %o", user, got, want)
		}
	}
}

func TestTemplateOutputAndTimeAreBounded(t *testing.T) {
	// 72 bytes that would render a gigabyte.
	bomb := `{{range 1000}}{{range 1000}}{{range 1000}}xxxxxxxxxxxxxxxxxxxxxxxxx{{end}}{{end}}{{end}}`
	spin := `{{range 2000000000}}{{end}}`
	f := newFixture(t, t.TempDir(), "", `      - {name: bomb, template: bomb.tmpl, path: bomb.conf}
      - {name: spin, template: spin.tmpl, path: spin.conf}
`, map[string]string{"bomb.tmpl": bomb, "spin.tmpl": spin})
	if _, err := f.run(t, 0); err == nil || !strings.Contains(err.Error(), "output too large") {
		t.Fatalf("bomb: %v", err)
	}
	old := RenderTimeout
	RenderTimeout = 200 * time.Millisecond
	defer func() { RenderTimeout = old }()
	start := time.Now()
	if _, err := f.run(t, 1); err == nil || !strings.Contains(err.Error(), "took longer than") {
		t.Fatalf("spin: %v", err)
	}
	if time.Since(start) > 3*time.Second {
		t.Fatalf("spin took %s", time.Since(start))
	}
	for _, p := range []string{"bomb.conf", "spin.conf"} {
		if _, err := os.Lstat(filepath.Join(f.roots.AppData("victim"), p)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s written: %v", p, err)
		}
	}
}

func TestASymlinkInTheHookPathIsRefused(t *testing.T) {
	base := t.TempDir()
	f := newFixture(t, base, "", `      - {name: c, template: c.tmpl, path: conf/app.conf}
      - {name: own, path: conf, owner: "4242:4242"}
`, map[string]string{"c.tmpl": "x\n"})
	outside := filepath.Join(base, "outside")
	os.MkdirAll(outside, 0o755)
	os.MkdirAll(f.roots.AppData("victim"), 0o700)
	if err := os.Symlink(outside, filepath.Join(f.roots.AppData("victim"), "conf")); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if _, err := f.run(t, i); err == nil || !strings.Contains(err.Error(), "through a symlink") {
			t.Errorf("hook %d: %v", i, err)
		}
	}
	if ents, _ := os.ReadDir(outside); len(ents) != 0 {
		t.Errorf("written outside: %v", ents)
	}
	if st := stat(t, outside); st.Uid == 4242 {
		t.Error("outside chowned")
	}
}

func stat(t *testing.T, p string) *syscall.Stat_t {
	t.Helper()
	fi, err := os.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Sys().(*syscall.Stat_t)
}

// TestSymlinkSwapDuringHookNeverWins is the race of issue 18: a container with its data dir
// mounted read-write swaps a directory the hook writes into (or chowns) for a symlink to a
// directory outside, as fast as it can (renameat2 RENAME_EXCHANGE), while the real hooks.Render and Apply
// renders and chowns 100,000 times. Nothing outside may ever be written or chowned.
func TestSymlinkSwapDuringHookNeverWins(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (chown)")
	}
	base := t.TempDir()
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() { // tmpfs: the fsyncs cost nothing
		base, _ = os.MkdirTemp("/dev/shm", "lockstep-hooks-race-")
		defer os.RemoveAll(base)
	}
	f := newFixture(t, base, "", `      - {name: c, template: c.tmpl, path: conf/victim}
      - {name: own, path: conf, owner: "4242:4242"}
`, map[string]string{"c.tmpl": "{{.ID}} {{export \"host\"}}\n"})
	data := f.roots.AppData("victim")
	outside := filepath.Join(base, "outside")
	if err := os.MkdirAll(outside, 0o755); err != nil {
		t.Fatal(err)
	}
	victim := filepath.Join(outside, "victim")
	os.WriteFile(victim, []byte("original\n"), 0o644)
	os.MkdirAll(filepath.Join(data, "conf", "sub"), 0o755)
	os.WriteFile(filepath.Join(data, "conf", "sub", "f"), nil, 0o644)
	if err := os.Symlink(outside, filepath.Join(data, "alt")); err != nil {
		t.Fatal(err)
	}
	var stop atomic.Bool
	var swaps atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		a, b := filepath.Join(data, "conf"), filepath.Join(data, "alt")
		for !stop.Load() {
			if unix.Renameat2(unix.AT_FDCWD, a, unix.AT_FDCWD, b, unix.RENAME_EXCHANGE) == nil {
				swaps.Add(1)
			}
		}
	}()
	tries := 100_000
	var refused int
	for i := range tries {
		if _, err := f.run(t, i%2); err != nil {
			refused++
		}
	}
	stop.Store(true)
	<-done
	if b, _ := os.ReadFile(victim); string(b) != "original\n" {
		t.Errorf("the file outside was rewritten: %q", b)
	}
	for _, p := range []string{outside, victim} {
		if st := stat(t, p); st.Uid == 4242 || st.Gid == 4242 {
			t.Errorf("%s was chowned outside the data dir", p)
		}
	}
	if ents, _ := os.ReadDir(outside); len(ents) != 1 {
		t.Errorf("files made outside: %v", ents)
	}
	if swaps.Load() < 1000 || refused == 0 {
		t.Fatalf("the race did not run: %d swaps, %d refusals in %d tries", swaps.Load(), refused, tries)
	}
	t.Logf("%d tries, %d swaps, %d refused", tries, swaps.Load(), refused)
}
