package rollback

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lockstep/lockstep/reconciler/plan"
	"github.com/lockstep/lockstep/spec"
)

type nolog struct{}

func (nolog) Warnf(string, ...any) {}

// TestBookHoldsNoSecret (issue 18): rollback.json held the saved requests' env with secrets
// expanded; it now holds markers (the secret store's Seal), and a book read again gets the values back
// (Unseal), so a rollback recreates the container with them.
func TestBookHoldsNoSecret(t *testing.T) {
	const secret = "0123456789abcdef0123456789abcdef"
	seal := func(s string) string { return strings.ReplaceAll(s, secret, "\x00secret:a/pw\x00") }
	unseal := func(s string) string { return strings.ReplaceAll(s, "\x00secret:a/pw\x00", secret) }
	dir := t.TempDir()
	rb, err := Load(dir, nolog{}, seal, unseal)
	if err != nil {
		t.Fatal(err)
	}
	rb.Apps["a"] = &plan.Record{App: "a", Good: &plan.Good{Hash: "h", Request: spec.CreateRequest{Name: "a",
		Env: map[string]string{"PW": secret, "TZ": "UTC"}, Command: []string{"serve", "--pw=" + secret}}}}
	rb.Dirty = true
	if err := rb.SaveLocked(); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(filepath.Join(dir, File))
	if strings.Contains(string(b), secret) || !strings.Contains(string(b), `\u0000secret:a/pw\u0000`) {
		t.Fatalf("rollback.json:\n%s", b)
	}
	if got := rb.Apps["a"].Good.Request.Env["PW"]; got != secret {
		t.Fatalf("saving sealed the book in memory: %q", got)
	}
	again, err := Load(dir, nolog{}, seal, unseal)
	if err != nil {
		t.Fatal(err)
	}
	r := again.Apps["a"].Good.Request
	if r.Env["PW"] != secret || r.Env["TZ"] != "UTC" || r.Command[1] != "--pw="+secret {
		t.Fatalf("read again: %+v", r)
	}
}
