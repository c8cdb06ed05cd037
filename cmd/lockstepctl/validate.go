package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/lockstep/lockstep/manifest"
	"github.com/lockstep/lockstep/policy"
	"github.com/lockstep/lockstep/spec"
)

func newValidateCmd() *cobra.Command {
	var roots manifest.Roots
	var policyFile string
	cmd := &cobra.Command{
		Use:   "validate FILE|DIR...",
		Short: "Check manifests offline: one line per problem as FILE: FIELD: REASON",
		Long: `Check app manifests without a daemon or podman. A directory is checked as one set of apps
(duplicate ids, dependencies and providers, references to exports, cycles, host ports and container
names clashing between apps), and so are several files given together; a single file is checked on
its own. Every manifest is also held to the operator's policy (--policy, as lockstepd reads it):
a refusal names the policy key that would allow it, and the last line gives the policy's verdict.
Exit status 0 when every manifest is valid and allowed, 1 otherwise.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			pol, err := policy.Load(policyFile)
			if err != nil {
				fmt.Fprintln(cmd.OutOrStdout(), err)
				return exitError(1)
			}
			roots.Policy = pol
			var problems manifest.Problems
			var files []string
			var notes []*manifest.Loaded
			n := 0
			for _, arg := range args {
				fi, err := os.Stat(arg)
				if err != nil {
					problems = append(problems, manifest.Problem{File: arg, Reason: "cannot read: " + err.Error()})
					continue
				}
				if fi.IsDir() {
					set, err := manifest.LoadDir(arg, roots)
					if err != nil {
						problems = append(problems, manifest.Problem{File: arg, Reason: err.Error()})
						continue
					}
					n += len(set.Apps) + len(set.Invalid)
					notes = append(notes, set.Apps...)
					problems = append(problems, set.Problems...)
					continue
				}
				n++
				files = append(files, filepath.Clean(arg))
			}
			if len(files) == 1 {
				l, ps := manifest.LoadFile(files[0], roots)
				if problems = append(problems, ps...); l != nil {
					notes = append(notes, l)
				}
			} else if len(files) > 1 {
				set := manifest.LoadFiles(files, roots)
				problems, notes = append(problems, set.Problems...), append(notes, set.Apps...)
			}
			for _, p := range spec.Notes(notes...) {
				fmt.Fprintln(cmd.ErrOrStderr(), "note: "+p.String())
			}
			refused := 0
			for _, p := range problems {
				fmt.Fprintln(cmd.OutOrStdout(), p.String())
				if policy.Refused(p.Reason) {
					refused++
				}
			}
			verdict := fmt.Sprintf("policy %s: nothing refused", policyFile)
			if refused > 0 {
				verdict = fmt.Sprintf("policy %s: %d refusal(s)", policyFile, refused)
			}
			if len(problems) > 0 {
				fmt.Fprintf(cmd.ErrOrStderr(), "%d problem(s); %s\n", len(problems), verdict)
				return exitError(1)
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "%d manifest(s) valid; %s\n", n, verdict)
			return nil
		},
	}
	cmd.Flags().StringVar(&roots.DataRoot, "data-root", "/var/lib/lockstep/apps", "the daemon's --data-root (where ${APP_DATA} points)")
	cmd.Flags().StringSliceVar(&roots.Extra, "volume-root", nil, "the daemon's extra --volume-root directories")
	cmd.Flags().StringVar(&policyFile, "policy", policy.DefaultFile, "the daemon's --policy: the operator's policy the manifests are held to (missing: nothing granted)")
	cmd.Flags().StringVar(&roots.NetworkPrefix, "network-prefix", "lockstep-", "the daemon's --network-prefix")
	return cmd
}
