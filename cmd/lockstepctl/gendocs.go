package main

import (
	"bytes"
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

// completionFiles maps each shell to the file genCompletions writes for it: the names the shells'
// completion directories expect (bash-completion: the command's name; zsh: _command; fish:
// command.fish). The package installs them (packaging/nfpm.yaml).
var completionFiles = map[string]string{"bash": "lockstepctl.bash", "zsh": "_lockstepctl", "fish": "lockstepctl.fish"}

// genCompletions writes lockstepctl's bash, zsh and fish completion scripts to dir, as
// `lockstepctl completion SHELL` prints them (make docs; committed in packaging/completions).
func genCompletions(root *cobra.Command, dir string) error {
	root.InitDefaultCompletionCmd()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for shell, name := range completionFiles {
		var b bytes.Buffer
		var err error
		switch shell {
		case "bash":
			err = root.GenBashCompletionV2(&b, true)
		case "zsh":
			err = root.GenZshCompletion(&b)
		case "fish":
			err = root.GenFishCompletion(&b, true)
		}
		if err == nil {
			err = os.WriteFile(filepath.Join(dir, name), b.Bytes(), 0o644)
		}
		if err != nil {
			return fmt.Errorf("%s completion: %w", shell, err)
		}
	}
	return nil
}

func newGenDocsCmd() *cobra.Command {
	var mdDir, manDir, complDir string
	cmd := &cobra.Command{
		Use:    "gen-docs",
		Short:  "Write the markdown and man pages of every command (make docs)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			// A fresh tree: the running one has been through flag parsing.
			if err := genDocs(newRoot(os.Stdout, os.Stderr), mdDir, manDir); err != nil {
				return err
			}
			if complDir == "" {
				return nil
			}
			return genCompletions(newRoot(os.Stdout, os.Stderr), complDir)
		},
	}
	cmd.Flags().StringVar(&mdDir, "markdown", "docs/cli", "directory for the markdown pages")
	cmd.Flags().StringVar(&manDir, "man", "docs/man", "directory for the man pages")
	cmd.Flags().StringVar(&complDir, "completions", "", "directory for the bash, zsh and fish completion scripts (none: not written)")
	return cmd
}
