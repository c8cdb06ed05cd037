// Package clidocs writes a cobra command tree's reference: one markdown page and one man page per
// command, and the bash, zsh and fish completion scripts (lockstepctl gen-docs, make docs).
package clidocs

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"
)

// ManDate is the date in the man pages' header. It is fixed so that generating the pages twice gives
// the same files; change it when the command line changes.
var ManDate = time.Date(2026, time.November, 1, 0, 0, 0, 0, time.UTC)

// Docs writes one markdown file per command to mdDir and one man page per command to manDir,
// from the command tree itself (make docs).
func Docs(root *cobra.Command, mdDir, manDir string) error {
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
	hdr := &doc.GenManHeader{Section: "1", Date: &ManDate, Source: "lockstep", Manual: "lockstep manual"}
	if err := doc.GenManTree(root, hdr, manDir); err != nil {
		return fmt.Errorf("man pages: %w", err)
	}
	return nil
}

// CompletionFiles maps each shell to the file Completions writes for it: the names the shells'
// completion directories expect (bash-completion: the command's name; zsh: _command; fish:
// command.fish). The package installs them (packaging/nfpm.yaml).
var CompletionFiles = map[string]string{"bash": "lockstepctl.bash", "zsh": "_lockstepctl", "fish": "lockstepctl.fish"}

// Completions writes lockstepctl's bash, zsh and fish completion scripts to dir, as
// `lockstepctl completion SHELL` prints them (make docs; committed in packaging/completions).
func Completions(root *cobra.Command, dir string) error {
	root.InitDefaultCompletionCmd()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for shell, name := range CompletionFiles {
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
