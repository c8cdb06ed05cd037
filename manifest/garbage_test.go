package manifest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
)

// garbageDir fills a real directory with what a broken disk, a bad copy or a hostile user can leave
// in an apps dir, and returns it with the reason expected for each file.
func garbageDir(t testing.TB, dir string) map[string]string {
	t.Helper()
	write := func(name string, data []byte) {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	rng := rand.New(rand.NewSource(1))
	bin := make([]byte, 64<<10)
	rng.Read(bin)
	write("binary.yaml", bin)
	noNul := bytes.ReplaceAll(bin, []byte{0}, []byte{0xff})
	write("binary-no-nul.yaml", noNul)
	// A 1 GiB sparse file: it must be refused by its size, never read into memory.
	f, err := os.Create(filepath.Join(dir, "huge.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	f.Truncate(1 << 30)
	f.Close()
	write("just-over.yaml", append([]byte("app:\n  id: just-over\n#"), bytes.Repeat([]byte("x"), MaxFileSize)...))
	write("nested-flow.yaml", []byte("app: "+strings.Repeat("[", 200000)+strings.Repeat("]", 200000)+"\n"))
	var deep strings.Builder
	deep.WriteString("app:\n")
	for i := 1; i < 200; i++ {
		deep.WriteString(strings.Repeat(" ", i) + "a:\n")
	}
	write("nested-block.yaml", []byte(deep.String()))
	write("nested-known.yaml", []byte("app:\n  container:\n    command: "+strings.Repeat("[", 100)+strings.Repeat("]", 100)+"\n"))
	// An alias bomb: nine levels of ten aliases each would be 10^9 nodes if expanded.
	var bomb strings.Builder
	bomb.WriteString("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n")
	for i := 1; i < 10; i++ {
		fmt.Fprintf(&bomb, "a%d: &a%d [", i, i)
		for j := 0; j < 10; j++ {
			if j > 0 {
				bomb.WriteString(", ")
			}
			fmt.Fprintf(&bomb, "*a%d", i-1)
		}
		bomb.WriteString("]\n")
	}
	bomb.WriteString("app: *a9\n")
	write("alias-bomb.yaml", []byte(bomb.String()))
	write("two-docs.yaml", []byte("app: {id: two-docs}\n---\napp: {id: x}\n"))
	write("empty.yaml", nil)
	write("scalar.yaml", []byte("just a string\n"))
	os.Symlink("loop-b.yaml", filepath.Join(dir, "loop-a.yaml"))
	os.Symlink("loop-a.yaml", filepath.Join(dir, "loop-b.yaml"))
	os.Symlink("self.yaml", filepath.Join(dir, "self.yaml"))
	os.Symlink("nowhere/missing.yaml", filepath.Join(dir, "dangling.yaml"))
	os.Mkdir(filepath.Join(dir, "dir.yaml"), 0o755)
	if err := syscall.Mkfifo(filepath.Join(dir, "fifo.yaml"), 0o644); err != nil {
		t.Fatal(err)
	}
	write("good.yaml", []byte("app:\n  id: good\n  name: Good\n  version: '1'\n  container:\n    image: localhost/good:1\n"))
	return map[string]string{
		"binary.yaml":        "file contains NUL bytes",
		"binary-no-nul.yaml": "not valid YAML",
		"huge.yaml":          fmt.Sprintf("file is larger than %d bytes", MaxFileSize),
		"just-over.yaml":     fmt.Sprintf("file is larger than %d bytes", MaxFileSize),
		"nested-flow.yaml":   "exceeded max depth of 10000",
		"nested-known.yaml":  "app.container.command[0]: want a single value, got a list",
		"nested-block.yaml":  "unknown key",
		"alias-bomb.yaml":    "", // first the unknown keys a0..a9, then:
		"alias-bomb.yaml#":   "app: YAML aliases are not allowed in manifests",
		"two-docs.yaml":      "more than one YAML document",
		"empty.yaml":         "file is empty",
		"scalar.yaml":        "want a mapping of keys",
		"loop-a.yaml":        "too many levels of symbolic links",
		"loop-b.yaml":        "too many levels of symbolic links",
		"self.yaml":          "too many levels of symbolic links",
		"dangling.yaml":      "no such file or directory",
		"dir.yaml":           "not a regular file",
		"fifo.yaml":          "not a regular file",
	}
}

// TestGarbageManifestDir: every bad file of a real directory is reported with its path and a reason,
// the good manifest beside them still loads, and nothing blocks (a FIFO) or loops (symlinks).
func TestGarbageManifestDir(t *testing.T) {
	dir := t.TempDir()
	want := garbageDir(t, dir)
	set, err := LoadDir(dir, roots)
	if err != nil {
		t.Fatal(err)
	}
	if len(set.Apps) != 1 || set.Apps[0].ID != "good" {
		t.Fatalf("apps %+v", set.Apps)
	}
	got := map[string][]string{}
	for _, p := range set.Problems {
		got[filepath.Base(p.File)] = append(got[filepath.Base(p.File)], p.String())
		if !strings.HasPrefix(p.String(), filepath.Join(dir, filepath.Base(p.File))+": ") {
			t.Errorf("problem does not start with its file: %q", p.String())
		}
		if len(p.String()) > 600 {
			t.Errorf("problem of %d bytes (the file's content echoed?): %.200q", len(p.String()), p.String())
		}
	}
	for key, reason := range want {
		name := strings.TrimSuffix(key, "#")
		ps := got[name]
		if len(ps) == 0 {
			t.Errorf("%s: no problem reported", name)
			continue
		}
		if !strings.Contains(strings.Join(ps, "\n"), reason) {
			t.Errorf("%s: %q lacks %q", name, ps, reason)
		}
		if !set.Invalid[strings.TrimSuffix(name, ".yaml")] {
			t.Errorf("%s: not marked invalid", name)
		}
	}
	for name := range got {
		if _, ok := want[name]; !ok {
			t.Errorf("unexpected problem for %s: %v", name, got[name])
		}
	}
}

// TestGarbageManifestDirMemory: loading the garbage dir (a 1 GiB file, a 1 MiB+ file, 200,000 levels
// of nesting, an alias bomb, ...) allocates a bounded amount, counted by the runtime: under 64 MiB
// in all, however large the files.
func TestGarbageManifestDirMemory(t *testing.T) {
	dir := t.TempDir()
	garbageDir(t, dir)
	LoadDir(dir, roots) // warm up
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	LoadDir(dir, roots)
	runtime.ReadMemStats(&after)
	alloc := after.TotalAlloc - before.TotalAlloc
	t.Logf("loading the garbage dir allocated %.1f MiB", float64(alloc)/(1<<20))
	if alloc > 64<<20 {
		t.Fatalf("loading the garbage dir allocated %d bytes", alloc)
	}
}

// BenchmarkGarbageManifestDir reports the bytes allocated per load of the garbage dir.
func BenchmarkGarbageManifestDir(b *testing.B) {
	dir := b.TempDir()
	garbageDir(b, dir)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		LoadDir(dir, roots)
	}
}

// TestUnreadableManifest: a manifest its reader may not open (lockstepctl validate run by an operator,
// or lockstepd after a bad chmod) is reported as "permission denied" with its path. Root can read
// anything, so the load runs as nobody: this test binary, copied to a dir nobody can reach, re-run
// under setpriv.
func TestUnreadableManifest(t *testing.T) {
	if d := os.Getenv("LOCKSTEP_UNREADABLE_DIR"); d != "" {
		set, err := LoadDir(d, roots)
		if err != nil {
			t.Fatal(err)
		}
		json.NewEncoder(os.Stdout).Encode(set.Problems)
		return
	}
	if os.Geteuid() != 0 {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, "locked.yaml"), []byte("app: {}\n"), 0o000)
		set, _ := LoadDir(dir, roots)
		checkUnreadable(t, dir, set.Problems)
		return
	}
	if _, err := exec.LookPath("setpriv"); err != nil {
		if os.Getenv("LOCKSTEP_REQUIRE_REAL") == "1" {
			t.Fatal("setpriv is not installed")
		}
		t.Skip("setpriv is not installed")
	}
	dir, err := os.MkdirTemp("/var/tmp", "lockstep-unreadable-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	os.Chmod(dir, 0o755)
	apps := filepath.Join(dir, "apps.d")
	os.Mkdir(apps, 0o755)
	os.WriteFile(filepath.Join(apps, "locked.yaml"), []byte("app: {}\n"), 0o000)
	self, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "manifest.test")
	if err := os.WriteFile(bin, self, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "--", bin, "-test.run", "^TestUnreadableManifest$")
	cmd.Env = append(os.Environ(), "LOCKSTEP_UNREADABLE_DIR="+apps)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("as nobody: %v\n%s", err, out)
	}
	var ps Problems
	line, _, _ := bytes.Cut(out, []byte("\n"))
	if err := json.Unmarshal(line, &ps); err != nil {
		t.Fatalf("output of the run as nobody: %v\n%s", err, out)
	}
	checkUnreadable(t, apps, ps)
}

func checkUnreadable(t *testing.T, dir string, ps Problems) {
	t.Helper()
	want := filepath.Join(dir, "locked.yaml") + ": -: cannot read: permission denied"
	if len(ps) != 1 || ps[0].String() != want {
		t.Fatalf("problems %v, want %q", ps, want)
	}
}
