package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

// exitError carries an exit code out of a command without printing anything more.
type exitError int

func (e exitError) Error() string { return fmt.Sprintf("exit %d", int(e)) }

// Exit codes, documented in docs/cli.md.
const (
	exitOK       = 0
	exitError1   = 1
	exitDegraded = 3
)

// globals are the persistent flags every command sees.
type globals struct {
	bus   busOptions
	color string
}

// connect dials the bus the global flags name; the caller closes the client.
func (g *globals) connect(cmd *cobra.Command) (*client, error) {
	return dial(cmd.Context(), &g.bus)
}

func (g *globals) palette(cmd *cobra.Command) (palette, error) {
	return colourMode(g.color, cmd.OutOrStdout())
}

func newRoot(stdout, stderr io.Writer) *cobra.Command {
	g := &globals{}
	root := &cobra.Command{
		Use:   "lockstepctl",
		Short: "See and steer lockstep, which keeps this host's apps in lockstep with their manifests",
		Long: `lockstepctl is the operator's command line for lockstep. It talks to lockstepd over D-Bus
(org.lockstep.Reconciler1 on the system bus, or --user, or --bus ADDRESS); validate, plan, render
and export work without the daemon.

Exit status: 0 success (for status: every app running, no failures), 3 degraded (status, reconcile,
install, remove: a failure or an app not running), 1 error (including lockstepd not running).`,
		SilenceUsage:      true,
		SilenceErrors:     true,
		DisableAutoGenTag: true,
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			if g.bus.user && g.bus.address != "" {
				return errors.New("--user and --bus cannot be used together")
			}
			_, err := g.palette(cmd)
			return err
		},
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	pf := root.PersistentFlags()
	pf.BoolVar(&g.bus.user, "user", false, "talk to a lockstepd on the session bus instead of the system bus")
	pf.StringVar(&g.bus.address, "bus", "", "talk to a lockstepd on the bus at this D-Bus address (e.g. unix:path=/run/dbus/system_bus_socket)")
	pf.StringVar(&g.color, "color", "auto", "colour the tables: auto (when stdout is a terminal and NO_COLOR is unset), always or never")
	root.RegisterFlagCompletionFunc("color", cobra.FixedCompletions([]string{"auto", "always", "never"}, cobra.ShellCompDirectiveNoFileComp))
	root.AddGroup(&cobra.Group{ID: "daemon", Title: "Commands that talk to lockstepd:"},
		&cobra.Group{ID: "offline", Title: "Commands that work without lockstepd:"})
	for _, c := range []*cobra.Command{newStatusCmd(g), newReportCmd(g), newReconcileCmd(g), newWatchCmd(g), newInstallCmd(g), newRemoveCmd(g), newSecretCmd(g)} {
		c.GroupID = "daemon"
		root.AddCommand(c)
	}
	for _, c := range []*cobra.Command{newValidateCmd(), newPlanCmd(g), newRenderCmd(), newExportCmd()} {
		c.GroupID = "offline"
		root.AddCommand(c)
	}
	root.AddCommand(newGenDocsCmd())
	return root
}

func execute(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	return executeContext(ctx, args, os.Stdin, stdout, stderr)
}

func executeContext(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	root := newRoot(stdout, stderr)
	root.SetIn(stdin)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	var ee exitError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &ee):
		return int(ee)
	default:
		fmt.Fprintln(stderr, "lockstepctl:", err)
		return exitError1
	}
}
