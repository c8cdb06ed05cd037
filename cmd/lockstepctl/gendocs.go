package main

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"
)

// manDate is the date in the man pages' header. It is fixed so that generating the pages twice gives
// the same files; change it when the command line changes.
var manDate = time.Date(2026, time.November, 1, 0, 0, 0, 0, time.UTC)

// genDocs writes one markdown file per command to mdDir and one man page per command to manDir,
// from the command tree itself (make docs).
func genDocs(root *cobra.Command, mdDir, manDir string) error {
	root.InitDefaultHelpCmd()
	root.InitDefaultCompletionCmd()
	root.DisableAutoGenTag = true
	for _, d := range []string{mdDir, manDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
		// Start from empty, so a removed command's page does not linger.
		old, _ := filepath.Glob(filepath.Join(d, "lockstepctl*"))
		for _, f := range old {
			if err := os.Remove(f); err != nil {
				return err
			}
		}
	}
	if err := doc.GenMarkdownTree(root, mdDir); err != nil {
		return fmt.Errorf("markdown: %w", err)
	}
	hdr := &doc.GenManHeader{Section: "1", Date: &manDate, Source: "lockstep", Manual: "lockstep manual"}
	if err := doc.GenManTree(root, hdr, manDir); err != nil {
		return fmt.Errorf("man pages: %w", err)
	}
	return nil
}

func newGenDocsCmd() *cobra.Command {
	var mdDir, manDir string
	cmd := &cobra.Command{
		Use:    "gen-docs",
		Short:  "Write the markdown and man pages of every command (make docs)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			// A fresh tree: the running one has been through flag parsing.
			return genDocs(newRoot(os.Stdout, os.Stderr), mdDir, manDir)
		},
	}
	cmd.Flags().StringVar(&mdDir, "markdown", "docs/cli", "directory for the markdown pages")
	cmd.Flags().StringVar(&manDir, "man", "docs/man", "directory for the man pages")
	return cmd
}
