package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/spf13/cobra"

	"github.com/lockstep/lockstep/export"
	"github.com/lockstep/lockstep/internal/atomicfile"
	"github.com/lockstep/lockstep/manifest"
)

func newExportCmd() *cobra.Command {
	var d dirs
	var format, kind, volumes, output, wantedBy string
	var all bool
	cmd := &cobra.Command{
		Use:   "export (ID... | --all)",
		Short: "Write apps as Kubernetes YAML or as Quadlet bundles, for other engines",
		Long: `Write apps for engines other than lockstep. Each ID is loaded from the apps dir if it is
installed, else from the catalog; --all exports every installed app. Works without lockstepd.

--format kube (default) writes one YAML stream (stdout, or --output FILE) that podman kube play and
a Kubernetes cluster accept: per app a Pod (--kind deployment: a Deployment of one replica,
strategy Recreate) with the app's containers, its health check as livenessProbe and startupProbe
(exec), its env in a ConfigMap (values marked secret in a Secret), its bind mounts as hostPath
volumes (--volumes pvc: one PersistentVolumeClaim per source), ports as containerPort/hostPort,
static pre-start files as an init container, and requires.apps as the annotation
io.lockstep.requires; each companion becomes a Pod or Deployment of its own.

--format quadlet writes one directory per app under --output DIR: the .container file of each
container and companion (the units lockstep would run), static pre-start files under files/, and a
README.md with the steps to install it, for fleet tools such as flightctl.

What cannot be carried over is printed as a warning on stderr and written into the output
(docs/scale-out.md explains each). Exit status: 0 written, 1 error (nothing is written).`,
		Example: "  lockstepctl export demo-web > demo-web.yaml && podman kube play demo-web.yaml\n" +
			"  lockstepctl export --all --kind deployment --volumes pvc -o apps.yaml\n" +
			"  lockstepctl export --format quadlet -o bundles demo-web",
		RunE: func(cmd *cobra.Command, args []string) error {
			if all == (len(args) > 0) {
				return errors.New("give app ids or --all (not both)")
			}
			apps, err := loadForExport(&d, args, all)
			if err != nil {
				return err
			}
			roots := d.roots()
			stderr := cmd.ErrOrStderr()
			switch format {
			case "kube":
				out, warnings, err := export.Kube(apps, export.Options{Roots: roots, Kind: kind, Volumes: volumes})
				if err != nil {
					return err
				}
				for _, w := range warnings {
					fmt.Fprintf(stderr, "lockstepctl: export: warning: %s\n", w)
				}
				if output == "" || output == "-" {
					_, err = cmd.OutOrStdout().Write(out)
					return err
				}
				return atomicfile.Write(output, out, 0o644)
			case "quadlet":
				if output == "" {
					return errors.New("--format quadlet needs --output DIR (one directory per app is written in it)")
				}
				// Every bundle is made before any is written.
				bundles := make([]map[string][]byte, len(apps))
				for i, a := range apps {
					files, warnings, err := export.Bundle(a, export.BundleOptions{Roots: roots, WantedBy: wantedBy})
					if err != nil {
						return err
					}
					for _, w := range warnings {
						fmt.Fprintf(stderr, "lockstepctl: export: warning: %s\n", w)
					}
					bundles[i] = files
				}
				for i, a := range apps {
					files := bundles[i]
					dir := filepath.Join(output, a.ID)
					names := make([]string, 0, len(files))
					for n := range files {
						names = append(names, n)
					}
					sort.Strings(names)
					for _, n := range names {
						p := filepath.Join(dir, filepath.FromSlash(n))
						if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
							return err
						}
						if err := atomicfile.Write(p, files[n], 0o644); err != nil {
							return err
						}
					}
					fmt.Fprintf(cmd.OutOrStdout(), "%s\n", dir)
				}
				return nil
			default:
				return fmt.Errorf("--format %q: want kube or quadlet", format)
			}
		},
	}
	d.addManifestFlags(cmd)
	f := cmd.Flags()
	f.StringVar(&d.catalogDir, "catalog-dir", "/usr/share/lockstep/catalog", "available apps, as lockstepd's --catalog-dir")
	f.BoolVar(&all, "all", false, "export every installed app (the apps dir)")
	f.StringVar(&format, "format", "kube", "kube (Kubernetes YAML) or quadlet (a bundle directory per app)")
	f.StringVar(&kind, "kind", export.KindPod, "kube: the workload of each app: pod or deployment")
	f.StringVar(&volumes, "volumes", export.VolumesHost, "kube: bind mounts as hostpath volumes or as pvc (PersistentVolumeClaims)")
	f.StringVarP(&output, "output", "o", "", "kube: the file to write (default stdout); quadlet: the directory to write bundles in")
	f.StringVar(&wantedBy, "wanted-by", "multi-user.target", "quadlet: the target the units are enabled for (default.target for a user's systemd)")
	cmd.MarkFlagDirname("catalog-dir")
	cmd.RegisterFlagCompletionFunc("format", cobra.FixedCompletions([]string{"kube", "quadlet"}, cobra.ShellCompDirectiveNoFileComp))
	cmd.RegisterFlagCompletionFunc("kind", cobra.FixedCompletions([]string{export.KindPod, export.KindDeployment}, cobra.ShellCompDirectiveNoFileComp))
	cmd.RegisterFlagCompletionFunc("volumes", cobra.FixedCompletions([]string{export.VolumesHost, export.VolumesPVC}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

// loadForExport loads the named apps (apps dir first, then the catalog) or every installed app. Any
// problem fails the export: a partial stream would look complete.
func loadForExport(d *dirs, ids []string, all bool) ([]*manifest.Loaded, error) {
	if all {
		set, err := manifest.LoadDir(d.appsDir, d.roots())
		if err != nil {
			return nil, err
		}
		if len(set.Problems) > 0 {
			return nil, fmt.Errorf("installed manifests are not valid:\n%s", set.Problems.Error())
		}
		if len(set.Apps) == 0 {
			return nil, fmt.Errorf("no apps are installed in %s", d.appsDir)
		}
		return set.Apps, nil
	}
	var apps []*manifest.Loaded
	for _, id := range ids {
		app, err := d.loadApp(id)
		if err != nil {
			return nil, err
		}
		apps = append(apps, app)
	}
	return apps, nil
}
