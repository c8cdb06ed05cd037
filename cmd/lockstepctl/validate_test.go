package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestValidate(t *testing.T) {
	code, out, _ := runCtl("validate", "../../catalog/demo")
	if code != 0 || out != "" {
		t.Fatalf("demo catalog: exit %d, %q", code, out)
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "x.yaml"), []byte("app:\n  id: x\n  name: x\n  version: '1'\n  container:\n    image: 'a:1'\n    ports: ['70000:80']\n    volumes: ['rel:/data']\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "y.yaml"), []byte("app:\n  id: y\n  nme: y\n"), 0o644)
	code, out, _ = runCtl("validate", filepath.Join(dir, "x.yaml"), dir)
	if code != 1 {
		t.Fatalf("exit %d", code)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	x := filepath.Join(dir, "x.yaml")
	want := []string{
		x + `: app.container.ports[0]: "70000:80": host port "70000" is not a number from 1 to 65535`,
		x + `: app.container.volumes[0]: "rel:/data": source "rel" is not an absolute path`,
	}
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Errorf("missing %q in:\n%s", w, out)
		}
	}
	if !strings.Contains(out, filepath.Join(dir, "y.yaml")+`: app.nme: unknown key (did you mean "name"?)`) {
		t.Errorf("y.yaml problem missing:\n%s", out)
	}
	for _, l := range lines {
		if len(strings.SplitN(l, ": ", 3)) != 3 {
			t.Errorf("line %q is not FILE: FIELD: REASON", l)
		}
	}
	if code, _, _ := runCtl("validate", filepath.Join(dir, "none.yaml")); code != 1 {
		t.Fatal("missing file accepted")
	}
}
