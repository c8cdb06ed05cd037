package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/lockstep/lockstep/report"
)

// degraded lists why a report is not healthy: failures, and apps or companions that are not running
// (an app removed in that pass does not count) or whose health check fails. Empty means healthy.
func degraded(rep *report.Report) []string {
	var why []string
	if n := len(rep.Failures); n > 0 {
		why = append(why, plural(n, "failure"))
	}
	down := 0
	for _, a := range rep.Apps {
		// A rolled-back app runs (its old spec); its failure entry already counts it.
		if (a.State != report.StateRunning && a.State != report.StateRemoved && a.State != report.StateRolledBack) || a.Health == "unhealthy" {
			down++
		}
	}
	// Companion states are systemd's ActiveState/SubState: active/running is up.
	for _, c := range rep.Companions {
		if c.State != "active/running" && c.State != report.StateRemoved {
			down++
		}
	}
	if down == 1 {
		why = append(why, "1 app not running or unhealthy")
	} else if down > 1 {
		why = append(why, fmt.Sprintf("%d apps not running or unhealthy", down))
	}
	return why
}

func newStatusCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "Show every app's state, health, image and last action, and the companions",
		Long: `Show the apps and companions of lockstepd's last report: state, health, image, last action and
how long ago the pass that saw them finished (SINCE). Colour on a terminal (see --color), plain when
piped. What the host's podman cannot do for the apps (no DNS on their networks, no id mapping for
rootless podman, no catatonit for podman kube play) comes first, with its fix and the apps it
affects. Failures of the last pass are listed under the tables.

Exit status: 0 when every app is running with no failures, 3 when degraded (a failure, or an app or
companion not running or unhealthy), 1 on error (e.g. lockstepd is not running).`,
		Example: "  lockstepctl status\n  lockstepctl status --color never | grep -v running",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.connect(cmd)
			if err != nil {
				return err
			}
			defer c.Close()
			rep, err := c.Report(cmd.Context())
			if err != nil {
				return err
			}
			state, err := c.State(cmd.Context())
			if err != nil {
				state = "unknown"
			}
			p, _ := g.palette(cmd)
			w := cmd.OutOrStdout()
			if rep.PassID == 0 {
				fmt.Fprintf(w, "lockstepd is %s; no pass has completed yet.\n", state)
			} else {
				fmt.Fprintf(w, "lockstepd is %s; pass %d (%s) finished %s ago: %s, %s.\n", state, rep.PassID, rep.Trigger,
					ago(rep.FinishedAt), plural(len(rep.Actions), "action"), plural(len(rep.Failures), "failure"))
			}
			printHostProblems(w, rep, p)
			since := ago(rep.FinishedAt)
			fmt.Fprintln(w, "\nApps:")
			printStatuses(w, rep.Apps, p, "APP", since)
			fmt.Fprintln(w, "\nCompanions:")
			printStatuses(w, rep.Companions, p, "COMPANION", since)
			if len(rep.Failures) > 0 {
				fmt.Fprintln(w, "\nFailures:")
				printFailures(w, rep.Failures, p)
			}
			if why := degraded(rep); len(why) > 0 {
				fmt.Fprintf(w, "\n%s: %s.\n", p.paint(colRed, "Degraded"), strings.Join(why, ", "))
				return exitError(exitDegraded)
			}
			return nil
		},
	}
}

func newReportCmd(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "report",
		Short: "Print lockstepd's last report, for humans or (--json) machines",
		Long: `Print the report of the last completed pass: its actions with their causes, its failures and the
state of every app and companion. With --json, the report as JSON in the schema of docs/cli.md (the
same as lockstepd --once and STATE-DIR/report.json).`,
		Example: "  lockstepctl report\n  lockstepctl report --json | jq -r '.failures[] | .app + \": \" + .error'",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.connect(cmd)
			if err != nil {
				return err
			}
			defer c.Close()
			rep, err := c.Report(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), rep)
			}
			p, _ := g.palette(cmd)
			printReport(cmd.OutOrStdout(), rep, p)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the report as JSON (schema in docs/cli.md)")
	return cmd
}

// filterReport keeps what a report says about one app: its actions, failures and status, and its
// companions' rows, actions and failures: a companion is the app's when its row names it (never by
// id prefix), a failure when it names the app or (an older lockstepd's) one of its companions.
func filterReport(rep *report.Report, id string) (*report.Report, bool) {
	out := *rep
	out.Actions, out.Failures, out.Apps, out.Companions = []report.ActionRec{}, []report.Failure{}, []report.AppStatus{}, []report.AppStatus{}
	found := false
	mine := map[string]bool{id: true} // the app and its companions
	for _, a := range rep.Companions {
		if a.App == id {
			out.Companions = append(out.Companions, a)
			mine[a.ID] = true
		}
	}
	for _, a := range rep.Actions {
		if mine[a.App] {
			out.Actions, found = append(out.Actions, a), found || a.App == id
		}
	}
	for _, f := range rep.Failures {
		if mine[f.App] {
			out.Failures, found = append(out.Failures, f), found || f.App == id
		}
	}
	for _, a := range rep.Apps {
		if a.ID == id {
			out.Apps, found = append(out.Apps, a), true
		}
	}
	return &out, found
}

// showPass prints (or, with asJSON, writes as JSON) the report of a pass, filtered to app when given,
// and returns exit 3 when what it shows is degraded.
func showPass(cmd *cobra.Command, g *globals, rep *report.Report, app string, asJSON bool) error {
	if app != "" {
		var found bool
		if rep, found = filterReport(rep, app); !found {
			return fmt.Errorf("app %q is not in the report of pass %d: it is not installed (see lockstepctl install) or its manifest in the apps dir is not named %s.yaml", app, rep.PassID, app)
		}
	}
	if asJSON {
		if err := writeJSON(cmd.OutOrStdout(), rep); err != nil {
			return err
		}
	} else {
		p, _ := g.palette(cmd)
		printReport(cmd.OutOrStdout(), rep, p)
	}
	if len(degraded(rep)) > 0 {
		return exitError(exitDegraded)
	}
	return nil
}

// progress shows a spinner and the elapsed time on w (a terminal) until stop is called, which clears
// the line.
func progress(w io.Writer, what string, tick time.Duration) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	start := time.Now()
	go func() {
		defer wg.Done()
		frames := []string{"⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"}
		t := time.NewTicker(tick)
		defer t.Stop()
		for i := 0; ; i++ {
			fmt.Fprintf(w, "\r\x1b[K%s %s %s", frames[i%len(frames)], what, time.Since(start).Truncate(100*time.Millisecond))
			select {
			case <-done:
				fmt.Fprint(w, "\r\x1b[K")
				return
			case <-t.C:
			}
		}
	}()
	var once sync.Once
	return func() { once.Do(func() { close(done); wg.Wait() }) }
}

func newReconcileCmd(g *globals) *cobra.Command {
	var app string
	var asJSON bool
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "reconcile",
		Short: "Run a pass now and show what it did",
		Long: `Ask lockstepd for a pass that starts after this call (or joins one already queued), wait for it
and print its report. On a terminal a progress line on stderr shows that the pass is running.

--app ID shows only what the pass did to that app: the D-Bus API has no per-app pass, so every app is
reconciled either way.

Exit status: 0 when what is shown has no failures and every app runs, 3 when degraded, 1 on error.`,
		Example: "  lockstepctl reconcile\n  lockstepctl reconcile --app demo-web --json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.connect(cmd)
			if err != nil {
				return err
			}
			defer c.Close()
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			stop := func() {}
			if isTerminal(cmd.ErrOrStderr()) {
				stop = progress(cmd.ErrOrStderr(), "reconciling…", 100*time.Millisecond)
			}
			rep, err := c.Reconcile(ctx)
			stop()
			if err != nil {
				return err
			}
			return showPass(cmd, g, rep, app, asJSON)
		},
	}
	cmd.Flags().StringVar(&app, "app", "", "show only what the pass did to this app (the whole pass runs regardless)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the pass's report as JSON (schema in docs/cli.md)")
	cmd.Flags().DurationVar(&timeout, "timeout", 10*time.Minute, "how long to wait for the pass (a pull or build can take long)")
	return cmd
}

// watchLine is one line of watch: TIME pass N (TRIGGER): A actions, F failures [app:action ...].
func watchLine(rep *report.Report) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s pass %d (%s): %s, %s", stamp(rep.FinishedAt), rep.PassID, rep.Trigger,
		plural(len(rep.Actions), "action"), plural(len(rep.Failures), "failure"))
	if len(rep.Actions) > 0 {
		as := make([]string, 0, len(rep.Actions))
		for _, a := range rep.Actions {
			as = append(as, a.App+":"+a.Action)
		}
		b.WriteString(" [" + strings.Join(as, " ") + "]")
	}
	return b.String()
}

func newWatchCmd(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "watch",
		Short: "Follow lockstepd's reports live, one line per change",
		Long: `Print one line each time lockstepd announces a report that says something new (the ReportChanged
signal; identical no-op passes are not announced):

  TIME pass N (TRIGGER): A actions, F failures [app:action ...]

and a line when lockstepd stops or starts. Runs until interrupted (SIGINT or SIGTERM, exit 0).
With --json, each change is one report as a line of JSON.`,
		Example: "  lockstepctl watch\n  lockstepctl watch --json | jq -c .failures",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.connect(cmd)
			if err != nil {
				return err
			}
			defer c.Close()
			ctx := cmd.Context()
			events, err := c.Subscribe(ctx)
			if err != nil {
				return err
			}
			if up, err := c.Running(ctx); err != nil {
				return err
			} else if !up {
				return c.notRunning()
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(cmd.ErrOrStderr(), "watching lockstepd on %s; Ctrl-C stops\n", g.bus.describe())
			for ev := range events {
				switch {
				case ev.err != nil:
					return ev.err
				case ev.ownerEv && ev.owner:
					fmt.Fprintf(w, "%s lockstepd started\n", stamp(now()))
				case ev.ownerEv:
					fmt.Fprintf(w, "%s lockstepd stopped; waiting for it to start again\n", stamp(now()))
				case asJSON:
					b, err := json.Marshal(ev.report)
					if err != nil {
						return err
					}
					fmt.Fprintf(w, "%s\n", b)
				default:
					fmt.Fprintln(w, watchLine(ev.report))
				}
			}
			return nil // interrupted
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print each changed report as one line of JSON")
	return cmd
}

func newInstallCmd(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "install ID",
		Short: "Install an app from the catalog and show the pass that set it up",
		Long: `Install catalog app ID (lockstepd links its manifest into the apps dir after validating it) and
print what the pass that installs it did to it. With --json, that pass's whole report.
Installing an installed app is not an error.

Exit status: 0 when the app runs, 3 when its pass failed for it, 1 on error (not in the catalog, an
invalid manifest, permission denied).`,
		Example: "  lockstepctl install demo-web",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.connect(cmd)
			if err != nil {
				return err
			}
			defer c.Close()
			ctx, cancel := context.WithTimeout(cmd.Context(), 10*time.Minute)
			defer cancel()
			stop := func() {}
			if isTerminal(cmd.ErrOrStderr()) {
				stop = progress(cmd.ErrOrStderr(), "installing "+args[0]+"…", 100*time.Millisecond)
			}
			rep, err := c.Install(ctx, args[0])
			stop()
			if err != nil {
				return err
			}
			if asJSON {
				return showPass(cmd, g, rep, "", true)
			}
			return showPass(cmd, g, rep, args[0], false)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the pass's whole report as JSON (schema in docs/cli.md)")
	return cmd
}

// stdinIsTerminal tells whether r is a terminal; a variable so tests can pretend.
var stdinIsTerminal = func(r io.Reader) bool {
	f, ok := r.(*os.File)
	return ok && isTerminal(f)
}

// confirmPurge asks for the app id on stdin; it refuses when stdin is not a terminal.
func confirmPurge(cmd *cobra.Command, id string) error {
	if !stdinIsTerminal(cmd.InOrStdin()) {
		return fmt.Errorf("refusing to purge %s without confirmation: stdin is not a terminal; add --yes to purge its data", id)
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "Purging deletes the data directory of %s for good.\nType the app id to confirm: ", id)
	line, err := bufio.NewReader(cmd.InOrStdin()).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("reading the confirmation: %w", err)
	}
	if strings.TrimSpace(line) != id {
		return fmt.Errorf("not confirmed (%q is not %q); nothing was removed", strings.TrimSpace(line), id)
	}
	return nil
}

func newRemoveCmd(g *globals) *cobra.Command {
	var purge, yes, asJSON bool
	cmd := &cobra.Command{
		Use:   "remove ID",
		Short: "Uninstall an app (its data is kept unless --purge)",
		Long: `Uninstall app ID: lockstepd stops and removes its companions, then its container, and keeps its
data and its image. With --purge it then deletes the app's data directory and the images it used
(except those another installed app names or any container uses), once the container is gone; purge asks
you to type the app id first unless --yes is given, and refuses without --yes when stdin is not a
terminal. An operator's own manifest (not a link into the catalog) is kept as .ID.yaml.removed.

Exit status: 0 when removed, 3 when its pass failed for it, 1 on error (not installed, refused).`,
		Example: "  lockstepctl remove demo-web\n  lockstepctl remove demo-web --purge --yes",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id := args[0]
			if purge && !yes {
				if err := confirmPurge(cmd, id); err != nil {
					return err
				}
			}
			c, err := g.connect(cmd)
			if err != nil {
				return err
			}
			defer c.Close()
			ctx, cancel := context.WithTimeout(cmd.Context(), 10*time.Minute)
			defer cancel()
			stop := func() {}
			if isTerminal(cmd.ErrOrStderr()) {
				stop = progress(cmd.ErrOrStderr(), "removing "+id+"…", 100*time.Millisecond)
			}
			rep, err := c.Remove(ctx, id, purge)
			stop()
			if err != nil {
				return err
			}
			if asJSON {
				return showPass(cmd, g, rep, "", true)
			}
			if purge {
				fmt.Fprintf(cmd.ErrOrStderr(), "%s removed and its data purged\n", id)
			} else {
				fmt.Fprintf(cmd.ErrOrStderr(), "%s removed; its data is kept\n", id)
			}
			if filtered, found := filterReport(rep, id); found {
				return showPass(cmd, g, filtered, "", false)
			}
			return showPass(cmd, g, rep, "", false)
		},
	}
	cmd.Flags().BoolVar(&purge, "purge", false, "also delete the app's data directory (asks for confirmation)")
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "purge without asking")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the pass's whole report as JSON (schema in docs/cli.md)")
	return cmd
}

func newSecretCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "secret",
		Short: "Manage the secrets lockstep generates for apps' exports",
		Long: `Secrets are exports an app declares with secret: true (an RPC password, say). lockstep generates
each once (32 random bytes, hex) and keeps it in its state directory, mode 0600; it is never shown.`,
		Args: cobra.NoArgs,
	}
	var asJSON bool
	rotate := &cobra.Command{
		Use:   "rotate APP NAME",
		Short: "Give an app's secret a new value and restart what uses it",
		Long: `Rotate secret NAME of app APP: lockstepd generates a new value, then a pass re-renders every file
and container that uses it and restarts each consumer exactly once, the providing app before its
consumers. Apps that do not use the secret are untouched. The value is never printed.

Exit status: 0 when applied, 3 when the pass failed for an app, 1 on error (no such secret, refused).`,
		Example: "  lockstepctl secret rotate bitcoin-knots rpc_password",
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.connect(cmd)
			if err != nil {
				return err
			}
			defer c.Close()
			ctx, cancel := context.WithTimeout(cmd.Context(), 10*time.Minute)
			defer cancel()
			rep, err := c.RotateSecret(ctx, args[0], args[1])
			if err != nil {
				return err
			}
			if !asJSON {
				fmt.Fprintf(cmd.ErrOrStderr(), "secret %s of %s rotated\n", args[1], args[0])
			}
			return showPass(cmd, g, rep, "", asJSON)
		},
	}
	rotate.Flags().BoolVar(&asJSON, "json", false, "print the pass's whole report as JSON (schema in docs/cli.md)")
	cmd.AddCommand(rotate)
	return cmd
}
