package dbusapi

import (
	"bufio"
	"os"
	"strings"
	"testing"

	"github.com/lockstep/lockstep/internal/testenv"
)

// TestDocExamples runs every "$ busctl" and "$ gdbus" line of docs/dbus-api.md against a private bus;
// lines in a block after "(the tests run these as `nobody`)" run as nobody. Monitors are skipped.
func TestDocExamples(t *testing.T) {
	testenv.Need(t, "busctl", "gdbus", "setpriv")
	e := start(t, policy(), "lockstep")
	f, err := os.Open("../docs/dbus-api.md")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	user, n := "", 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.Contains(line, "the tests run these as `nobody`") {
			user = "nobody"
		}
		cmd, ok := strings.CutPrefix(line, "$ ")
		if !ok || strings.Contains(cmd, " monitor ") {
			continue
		}
		args := strings.Fields(cmd)
		out, err := e.bus.Run(user, args[0], args[1:]...)
		if err != nil {
			t.Errorf("%s (as %q): %v\n%s", cmd, user, err, out)
		}
		n++
	}
	if n < 10 {
		t.Fatalf("only %d examples found", n)
	}
}
