package main

import (
	"os"

	"github.com/lockstep/lockstep/internal/clidocs"
	"github.com/spf13/cobra"
)

func newGenDocsCmd() *cobra.Command {
	var mdDir, manDir, complDir string
	cmd := &cobra.Command{
		Use:    "gen-docs",
		Short:  "Write the markdown and man pages of every command (make docs)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			// A fresh tree: the running one has been through flag parsing.
			if err := clidocs.Docs(newRoot(os.Stdout, os.Stderr), mdDir, manDir); err != nil {
				return err
			}
			if complDir == "" {
				return nil
			}
			return clidocs.Completions(newRoot(os.Stdout, os.Stderr), complDir)
		},
	}
	cmd.Flags().StringVar(&mdDir, "markdown", "docs/cli", "directory for the markdown pages")
	cmd.Flags().StringVar(&manDir, "man", "docs/man", "directory for the man pages")
	cmd.Flags().StringVar(&complDir, "completions", "", "directory for the bash, zsh and fish completion scripts (none: not written)")
	return cmd
}
