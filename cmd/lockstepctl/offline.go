package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/spf13/cobra"

	"github.com/lockstep/lockstep/engine"
	"github.com/lockstep/lockstep/manifest"
	"github.com/lockstep/lockstep/podman"
	"github.com/lockstep/lockstep/policy"
	"github.com/lockstep/lockstep/quadlet"
	"github.com/lockstep/lockstep/reconciler"
	"github.com/lockstep/lockstep/reconciler/companions"
	"github.com/lockstep/lockstep/report"
)

// dirs are lockstepd's directory flags, with the same defaults, for the commands that read its
// configuration directly.
type dirs struct {
	podmanURL   string
	appsDir     string
	catalogDir  string
	stateDir    string
	dataRoot    string
	volumeRoots []string
	policyFile  string
	policy      *policy.Policy
}

// roots are the daemon's roots and policy. A policy that cannot be read is said once on stderr and
// replaced by the empty policy: nothing is granted.
func (d *dirs) roots() manifest.Roots {
	dr := d.dataRoot
	if dr == "" {
		dr = filepath.Join(d.stateDir, "apps")
	}
	if d.policy == nil {
		file := d.policyFile
		if file == "" {
			file = policy.DefaultFile
		}
		p, err := policy.Load(file)
		if err != nil {
			fmt.Fprintf(os.Stderr, "lockstepctl: %v (holding manifests to the empty policy: nothing granted)\n", err)
			p = &policy.Policy{File: file}
		}
		d.policy = p
	}
	return manifest.Roots{DataRoot: dr, Extra: d.volumeRoots, Policy: d.policy}
}

// loadApp loads app id's manifest from the apps dir if it is installed, else from the catalog.
func (d *dirs) loadApp(id string) (*manifest.Loaded, error) {
	var tried []string
	for _, dir := range []string{d.appsDir, d.catalogDir} {
		file := filepath.Join(dir, id+".yaml")
		tried = append(tried, file)
		if _, err := os.Stat(file); err != nil {
			continue
		}
		a, problems := manifest.LoadFile(file, d.roots())
		if len(problems) > 0 {
			return nil, fmt.Errorf("%s is not valid:\n%s", file, problems.Error())
		}
		return a, nil
	}
	return nil, fmt.Errorf("no manifest for %q: none of %v exists (see --apps-dir, --catalog-dir)", id, tried)
}

func (d *dirs) addManifestFlags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&d.appsDir, "apps-dir", "/etc/lockstep/apps.d", "installed apps, as lockstepd's --apps-dir")
	f.StringVar(&d.stateDir, "state-dir", "/var/lib/lockstep", "lockstepd's --state-dir (adoptions; default of --data-root)")
	f.StringVar(&d.dataRoot, "data-root", "", "lockstepd's --data-root, where ${APP_DATA} lives (default STATE-DIR/apps)")
	f.StringSliceVar(&d.volumeRoots, "volume-root", nil, "lockstepd's extra --volume-root directories")
	f.StringVar(&d.policyFile, "policy", policy.DefaultFile, "lockstepd's --policy: the operator's policy manifests are held to")
	cmd.MarkFlagDirname("apps-dir")
	cmd.MarkFlagDirname("state-dir")
	cmd.MarkFlagDirname("data-root")
}

// planJSON is plan's --json output (docs/cli.md).
type planJSON struct {
	Actions  []report.ActionRec `json:"actions"`
	Problems []problemJSON      `json:"problems"`
}

type problemJSON struct {
	File   string `json:"file"`
	Field  string `json:"field"`
	Reason string `json:"reason"`
}

func newPlanCmd(g *globals) *cobra.Command {
	var d dirs
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "plan",
		Short: "Show what the next pass would do to each app and why, changing nothing",
		Long: `Load the installed manifests, list the containers of the podman service and plan, exactly as a
pass does, without doing anything and without lockstepd: one row per app with its action (none,
start, install, recreate, force-recreate, adopt, remove, hold, wait) and the cause. Manifest
problems are listed after the table. Give the same directories as lockstepd's flags when they are
not the defaults. Needs read access to the apps dir and the podman socket (root, usually).

Exit status: 0 when the plan was made, 1 when it could not be (podman unreachable, apps dir
unreadable).`,
		Example: "  lockstepctl plan\n  lockstepctl plan --json | jq -r '.actions[] | select(.action != \"none\") | .app'",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			// ReadOnly: no state dir is made, no secret generated (tested with the real binary).
			rec, err := reconciler.New(reconciler.Config{AppsDir: d.appsDir, StateDir: d.stateDir, Roots: d.roots(), ReadOnly: true}, podman.New(d.podmanURL))
			if err != nil {
				return err
			}
			obs, err := rec.Observe(cmd.Context())
			if obs == nil {
				return fmt.Errorf("reading the installed apps in %s: %w", d.appsDir, err)
			}
			out := planJSON{Actions: []report.ActionRec{}, Problems: []problemJSON{}}
			for _, p := range obs.Set.Problems {
				out.Problems = append(out.Problems, problemJSON{p.File, p.Field, p.Reason})
			}
			if err != nil {
				if errors.Is(err, engine.ErrUnavailable) {
					return fmt.Errorf("podman is not reachable at %s: %v; start it with: systemctl start podman.socket, or give --podman-url", d.podmanURL, err)
				}
				return err
			}
			for _, a := range obs.Actions {
				cause := a.Cause
				if a.Desired != nil && a.Desired.Member != "" {
					cause = a.Desired.Member + ": " + cause // a stack's container
				}
				out.Actions = append(out.Actions, report.ActionRec{App: a.App, Action: string(a.Kind), Cause: cause})
			}
			sort.SliceStable(out.Actions, func(i, j int) bool { return out.Actions[i].App < out.Actions[j].App })
			w := cmd.OutOrStdout()
			if asJSON {
				return writeJSON(w, out)
			}
			if len(out.Actions) == 0 {
				fmt.Fprintf(w, "No apps are installed in %s and no lockstep containers exist.\n", d.appsDir)
			} else {
				t := newTable(w, "APP", "ACTION", "CAUSE")
				for _, a := range out.Actions {
					t.row(a.App, a.Action, a.Cause)
				}
				t.flush()
			}
			if len(obs.Set.Problems) > 0 {
				fmt.Fprintln(w, "\nManifest problems (those apps are held as they are):")
				for _, p := range obs.Set.Problems {
					fmt.Fprintln(w, "  "+p.String())
				}
			}
			return nil
		},
	}
	d.addManifestFlags(cmd)
	cmd.Flags().StringVar(&d.podmanURL, "podman-url", "unix:///run/podman/podman.sock", "podman API service, as lockstepd's --podman-url")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the plan as JSON (schema in docs/cli.md)")
	return cmd
}

// renderMode is the companion mode render uses (its --mode flag).
var renderMode = companions.ModeQuadlet

// renderCompanions renders an app's companions to systemd units, by unit file name, exactly as
// lockstepd's companion stage writes them (system scope): providers, the installed set's, resolve a
// mount's from as lockstepd does.
var renderCompanions = func(app *manifest.Loaded, roots manifest.Roots, providers map[string]string) (map[string][]byte, error) {
	out := map[string][]byte{}
	for i, c := range app.Companions {
		u, err := quadlet.CompanionUnit(app, i, roots, providers, "multi-user.target")
		if err != nil {
			return nil, err
		}
		var b []byte
		name := quadlet.ContainerFile(c.ID)
		if renderMode == companions.ModeService {
			b, err = quadlet.RenderService(u)
			name = quadlet.ServiceFile(c.ID)
		} else {
			b, err = quadlet.RenderContainer(u)
		}
		if err != nil {
			return nil, err
		}
		out[name] = b
	}
	return out, nil
}

func newRenderCmd() *cobra.Command {
	var d dirs
	cmd := &cobra.Command{
		Use:   "render ID",
		Short: "Print the systemd units an app's companions produce",
		Long: `Load app ID's manifest, from the apps dir if it is installed, else from the catalog, and print the
unit files its companions render to, each after a "# FILE" line. Works without lockstepd.`,
		Example: "  lockstepctl render demo-web\n  lockstepctl render demo-web --mode service",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			app, err := d.loadApp(args[0])
			if err != nil {
				return err
			}
			if len(app.Companions) == 0 {
				fmt.Fprintf(cmd.ErrOrStderr(), "%s has no companions: nothing to render\n", app.ID)
				return nil
			}
			var providers map[string]string // the installed set's, when the apps dir reads
			if set, err := manifest.NewCache().LoadDir(d.appsDir, d.roots()); err == nil {
				providers = set.Providers
			}
			units, err := renderCompanions(app, d.roots(), providers)
			if err != nil {
				return fmt.Errorf("rendering the companions of %s: %w", app.ID, err)
			}
			names := make([]string, 0, len(units))
			for n := range units {
				names = append(names, n)
			}
			sort.Strings(names)
			w := cmd.OutOrStdout()
			for i, n := range names {
				if i > 0 {
					fmt.Fprintln(w)
				}
				fmt.Fprintf(w, "# %s\n%s", n, units[n])
			}
			return nil
		},
	}
	d.addManifestFlags(cmd)
	cmd.Flags().StringVar(&d.catalogDir, "catalog-dir", "/usr/share/lockstep/catalog", "available apps, as lockstepd's --catalog-dir")
	cmd.Flags().StringVar(&renderMode, "mode", companions.ModeQuadlet, "companion mode to render for: quadlet (.container files) or service (plain units, podman without Quadlet)")
	cmd.MarkFlagDirname("catalog-dir")
	return cmd
}
