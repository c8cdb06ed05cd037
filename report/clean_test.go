package report

import (
	"encoding/json"
	"strings"
	"testing"
)

// A container's HTTP status line with terminal escapes (and a bidi override) reaches no client.
func TestCleanStripsControlCharacters(t *testing.T) {
	evil := "probe 127.0.0.1:8080: HTTP 500 \x1b]0;pwned\x07\x1b[2J\x1b[31mred\u202e\r\nX-Injected: 1\xff"
	r := &Report{Failures: []Failure{{App: "web", Error: evil}}, Apps: []AppStatus{{ID: "web", Image: "x\x1b[0m:1", State: "running"}},
		HostProblems: []HostProblem{{Message: "m\x00", Apps: []string{"a\x1b"}}}}
	Clean(r)
	b, _ := json.Marshal(r)
	for _, c := range string(b) {
		if c < 0x20 || (c >= 0x7f && c <= 0x9f) || c == 0x202e {
			t.Fatalf("control character %U left in %s", c, b)
		}
	}
	if got := r.Failures[0].Error; !strings.HasPrefix(got, "probe 127.0.0.1:8080: HTTP 500 ]0;pwned[2J[31mred  X-Injected: 1") {
		t.Fatalf("error %q", got)
	}
}

func TestCleanBoundsTheReportWithACount(t *testing.T) {
	r := &Report{}
	for i := 0; i < 30_000; i++ {
		r.Failures = append(r.Failures, Failure{App: "app", Error: strings.Repeat("e", 200)})
		r.Actions = append(r.Actions, ActionRec{App: "app", Action: "start", Cause: strings.Repeat("c", 100)})
	}
	Clean(r)
	if n := size(r); n > MaxBytes {
		t.Fatalf("report is %d bytes after Clean", n)
	}
	last := r.Failures[len(r.Failures)-1].Error
	if !strings.Contains(last, "more failures not shown") || len(r.Failures) > 500 {
		t.Fatalf("%d failures, last %q", len(r.Failures), last)
	}
	small := &Report{Failures: []Failure{{App: "a", Error: "e"}}}
	if Bounded(small) != small {
		t.Fatal("a small report was copied")
	}
}
