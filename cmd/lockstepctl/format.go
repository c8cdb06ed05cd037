package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"golang.org/x/term"

	"github.com/lockstep/lockstep/report"
)

// isTerminal tells whether w is a terminal; a variable so tests can pretend.
var isTerminal = func(w any) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// now is the clock for "since" columns.
var now = time.Now

// palette colours table cells, or not. Every colour code has the same length ("\x1b[NNm", reset
// "\x1b[0m"), and in a coloured column every cell is wrapped, so tabwriter's alignment, which counts
// bytes, stays right.
type palette struct{ on bool }

const (
	colGreen  = "32"
	colRed    = "31"
	colYellow = "33"
	colPlain  = "39"
	colBold   = "01"
)

func (p palette) paint(code, s string) string {
	if !p.on {
		return s
	}
	return "\x1b[" + code + "m" + s + "\x1b[0m"
}

// stateColour is the colour of an app's state.
func stateColour(state string) string {
	switch state {
	case report.StateRunning:
		return colGreen
	case report.StateRemoved:
		return colPlain
	case "exited", "created", "paused", "stopping", "restarting", report.StateMissing, report.StateRolledBack, report.StateStarting:
		return colYellow
	}
	return colRed
}

func healthColour(h string) string {
	switch h {
	case "healthy":
		return colGreen
	case "unhealthy":
		return colRed
	case "starting":
		return colYellow
	}
	return colPlain
}

// colourMode resolves --color against the writer.
func colourMode(mode string, w io.Writer) (palette, error) {
	switch mode {
	case "always":
		return palette{true}, nil
	case "never":
		return palette{false}, nil
	case "auto", "":
		return palette{isTerminal(w) && os.Getenv("NO_COLOR") == ""}, nil
	}
	return palette{}, fmt.Errorf("--color %q: want auto, always or never", mode)
}

// table is a tab-separated table with a header, rendered by text/tabwriter.
type table struct {
	w *tabwriter.Writer
}

func newTable(out io.Writer, header ...string) *table {
	t := &table{w: tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)}
	t.row(header...)
	return t
}

// row adds a row, indented by two spaces; an empty cell shows as "-".
func (t *table) row(cells ...string) {
	for i, c := range cells {
		if c == "" {
			cells[i] = "-"
		}
	}
	fmt.Fprintln(t.w, "  "+strings.Join(cells, "\t"))
}

func (t *table) flush() { t.w.Flush() }

// ago formats how long ago t was, in whole units: 12s, 5m, 3h, 2d.
func ago(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return shortDuration(now().Sub(t))
}

func shortDuration(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d/time.Second))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d/time.Minute))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", int(d/time.Hour))
	}
	return fmt.Sprintf("%dd", int(d/(24*time.Hour)))
}

// shortID is the first 12 characters of a container id, as podman shows it.
func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format(time.RFC3339)
}

// writeJSON prints v indented, as the --json outputs do.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// printReport is the human format of a report, shared by report, reconcile, install and remove.
func printReport(w io.Writer, rep *report.Report, p palette) {
	if rep.PassID == 0 {
		fmt.Fprintln(w, "No pass has completed yet.")
		return
	}
	took := "-"
	if !rep.StartedAt.IsZero() && !rep.FinishedAt.IsZero() {
		took = rep.FinishedAt.Sub(rep.StartedAt).Round(time.Millisecond).String()
	}
	fmt.Fprintf(w, "Pass %d (%s) finished %s, took %s: %s, %s\n", rep.PassID, rep.Trigger, stamp(rep.FinishedAt), took,
		plural(len(rep.Actions), "action"), plural(len(rep.Failures), "failure"))
	printHostProblems(w, rep, p)

	fmt.Fprintln(w, "\nActions:")
	if len(rep.Actions) == 0 {
		fmt.Fprintln(w, "  none")
	} else {
		t := newTable(w, "APP", "ACTION", "CAUSE")
		for _, a := range rep.Actions {
			t.row(a.App, a.Action, a.Cause)
		}
		t.flush()
	}
	if len(rep.Failures) > 0 {
		fmt.Fprintln(w, "\nFailures:")
		printFailures(w, rep.Failures, p)
	}
	fmt.Fprintln(w, "\nApps:")
	printStatuses(w, rep.Apps, p, "APP", "")
	if len(rep.Companions) > 0 {
		fmt.Fprintln(w, "\nCompanions:")
		printStatuses(w, rep.Companions, p, "COMPANION", "")
	}
}

// printHostProblems is the headline of what the host's podman cannot do for the apps, one
// paragraph per problem: what is wrong, the fix, the apps it affects.
func printHostProblems(w io.Writer, rep *report.Report, p palette) {
	for _, hp := range rep.HostProblems {
		fmt.Fprintf(w, "\n%s %s\n", p.paint(colRed, "Host problem ("+hp.Code+"):"), hp.Message)
		fmt.Fprintf(w, "  fix: %s\n", hp.Fix)
		if len(hp.Apps) == 0 {
			fmt.Fprintln(w, "  apps affected: none now")
		} else {
			fmt.Fprintf(w, "  apps affected: %s\n", strings.Join(hp.Apps, ", "))
		}
	}
}

// printFailures lists failures: who (report.Failure.Who: app, companion, class word) and message.
func printFailures(w io.Writer, fs []report.Failure, p palette) {
	for _, f := range fs {
		fmt.Fprintf(w, "  %s: %s\n", p.paint(colRed, f.Who()), f.Error)
	}
}

// printStatuses is the table of apps (or companions) of a report; status passes since, the age of the
// report, for a SINCE column instead of CONTAINER.
func printStatuses(w io.Writer, as []report.AppStatus, p palette, first string, since string) {
	if len(as) == 0 {
		fmt.Fprintln(w, "  none")
		return
	}
	header := []string{first, p.paint(colBold, "STATE"), p.paint(colBold, "HEALTH"), "IMAGE", "CONTAINER", "LAST ACTION"}
	if since != "" {
		header = []string{first, p.paint(colBold, "STATE"), p.paint(colBold, "HEALTH"), "IMAGE", "LAST ACTION", "SINCE"}
	}
	t := newTable(w, header...)
	for _, a := range as {
		state, health := a.State, a.Health
		if state == "" {
			state = "-"
		}
		if health == "" {
			health = "-"
		}
		cells := []string{a.ID, p.paint(stateColour(a.State), state), p.paint(healthColour(a.Health), health), a.Image, shortID(a.ContainerID), a.LastAction}
		if since != "" {
			cells = []string{a.ID, cells[1], cells[2], a.Image, a.LastAction, since}
		}
		if len(a.Containers) > 0 {
			cells[3], cells[4] = fmt.Sprintf("(%s)", plural(len(a.Containers), "container")), ""
			if since != "" {
				cells[3] = fmt.Sprintf("(%s)", plural(len(a.Containers), "container"))
			}
		}
		t.row(cells...)
		// A stack's containers follow their app, indented.
		for _, c := range a.Containers {
			cc := []string{"  " + c.Name, p.paint(stateColour(c.State), c.State), p.paint(healthColour(c.Health), c.Health), c.Image, shortID(c.ContainerID), c.LastAction}
			if since != "" {
				cc = []string{"  " + c.Name, cc[1], cc[2], c.Image, c.LastAction, ""}
			}
			t.row(cc...)
		}
	}
	t.flush()
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}
