package main

import (
	"bytes"
	"flag"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/lockstep/lockstep/internal/testenv"
)

var updateMan = flag.Bool("update-man", false, "write docs/man/lockstepd.8 (make docs)")

const manFile = "../../docs/man/lockstepd.8"

// TestManPageUpToDate fails when docs/man/lockstepd.8 is not what lockstepd's flags generate: run
// make docs and commit the result. Every flag is in the page, and groff formats it without a warning.
func TestManPageUpToDate(t *testing.T) {
	fs := newFlagSet(&options{})
	got := manPage(fs)
	if *updateMan {
		if err := os.WriteFile(manFile, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	committed, err := os.ReadFile(manFile)
	if err != nil || !bytes.Equal(got, committed) {
		t.Fatalf("docs/man/lockstepd.8 is not what the flags generate (%v): run make docs", err)
	}
	if !bytes.Equal(got, manPage(newFlagSet(&options{}))) {
		t.Fatal("two renderings differ")
	}
	fs.VisitAll(func(f *flag.Flag) {
		if !bytes.Contains(got, []byte(`\fB\-\-`+roff(f.Name)+`\fR`)) {
			t.Errorf("--%s is not in the man page", f.Name)
		}
	})
	// groff formats it (-ww: every warning; none may come), as man(1) would.
	testenv.Need(t, "groff")
	cmd := exec.Command("groff", "-man", "-Tascii", "-ww", "-P-cbou", manFile)
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil || stderr.Len() > 0 {
		t.Fatalf("groff -man %s: %v\n%s", manFile, err, stderr.String())
	}
	text := strings.Join(strings.Fields(string(out)), " ") // justification adds spaces
	for _, want := range []string{"lockstepd - keep a host's podman containers", "--podman-url STRING", "--volume-root LIST", "--once"} {
		if !strings.Contains(text, want) {
			t.Errorf("the formatted page lacks %q:\n%s", want, out)
		}
	}
}
