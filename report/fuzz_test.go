package report

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// FuzzLoadReport: whatever bytes lie in STATE-DIR/report.json (a torn disk, an old or newer
// lockstepd, an operator's edit), reading it at start-up never panics; a report it accepts is saved
// and read back to the same JSON, so the HTTP API and a restarted daemon say the same thing.
func FuzzLoadReport(f *testing.F) {
	start := time.Date(2026, 11, 29, 4, 0, 0, 123456789, time.UTC)
	for _, r := range []*Report{
		{PassID: 3, Trigger: "timer", StartedAt: start, FinishedAt: start.Add(time.Second), Actions: []ActionRec{{App: "a", Action: "install", Cause: "no container"}},
			Failures: []Failure{{App: "b", Error: "b.yaml: app.nme: unknown key"}}, Apps: []AppStatus{{ID: "a", State: "running", NextAttempt: "2026-11-29T04:01:00Z"}},
			Companions: []AppStatus{}, CompanionMode: "quadlet"},
		{},
	} {
		b, _ := json.Marshal(r)
		f.Add(b)
	}
	f.Add([]byte(`{"pass_id": -1}`))
	f.Add([]byte(`{"pass_id": 1, "apps": [{"id": "\udc00"}], "started_at": "not a time"}`))
	f.Add([]byte("{\"trigger\": \"\xff\"}"))
	dir, out := f.TempDir(), f.TempDir() // one pair per fuzzing process: a TempDir per input is slow
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := os.WriteFile(filepath.Join(dir, reportFile), data, 0o644); err != nil {
			t.Fatal(err)
		}
		r, err := LoadReport(dir)
		if err != nil || r == nil {
			return
		}
		first, err := json.Marshal(r)
		if err != nil {
			return // e.g. a year outside what JSON times can hold
		}
		if err := SaveReport(out, r); err != nil {
			t.Fatalf("saving a report that was read: %v", err)
		}
		r2, err := LoadReport(out)
		if err != nil || r2 == nil {
			t.Fatalf("reading back a saved report: %v", err)
		}
		second, _ := json.Marshal(r2)
		if !bytes.Equal(first, second) {
			t.Fatalf("save and load changed the report:\n%s\n%s", first, second)
		}
	})
}
