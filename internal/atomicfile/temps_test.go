package atomicfile

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// TestRemoveTemps: only Write's temporary files (".TARGET.tmp-DIGITS", regular files) for accepted
// targets go; targets, look-alikes, directories and other files stay.
func TestRemoveTemps(t *testing.T) {
	dir := t.TempDir()
	files := []string{"report.json", ".report.json.tmp-123", ".images.json.tmp-9", ".lockstep-a.container.tmp-42",
		".other.container.tmp-7", ".x.tmp-", ".y.tmp-12a", "z.tmp-1", ".hidden"}
	for _, f := range files {
		os.WriteFile(filepath.Join(dir, f), []byte("x"), 0o644)
	}
	os.Mkdir(filepath.Join(dir, ".d.tmp-5"), 0o755)
	removed, err := RemoveTemps(dir, func(target string) bool { return !strings.HasPrefix(target, "other") })
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range removed {
		names = append(names, filepath.Base(p))
	}
	sort.Strings(names)
	if got := strings.Join(names, " "); got != ".images.json.tmp-9 .lockstep-a.container.tmp-42 .report.json.tmp-123" {
		t.Fatalf("removed %s", got)
	}
	entries, _ := os.ReadDir(dir)
	var left []string
	for _, e := range entries {
		left = append(left, e.Name())
	}
	if got := strings.Join(left, " "); got != ".d.tmp-5 .hidden .other.container.tmp-7 .x.tmp- .y.tmp-12a report.json z.tmp-1" {
		t.Fatalf("left %s", got)
	}
	// A temporary file made as Write makes it, as a killed writer leaves it, is recognized; nil
	// accepts every target.
	f, err := os.CreateTemp(dir, ".unit.service.tmp-*")
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	removed, _ = RemoveTemps(dir, nil)
	if len(removed) != 2 || removed[0] != filepath.Join(dir, ".other.container.tmp-7") || removed[1] != f.Name() {
		t.Fatalf("removed %v, want .other.container.tmp-7 and %s", removed, f.Name())
	}
	if removed, err := RemoveTemps(filepath.Join(dir, "missing"), nil); err != nil || removed != nil {
		t.Fatalf("missing dir: %v %v", removed, err)
	}
}
