package cmd

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"
	"github.com/spf13/pflag"
)

// The hidden `echoctl gen` commands write what is generated from the command
// tree: `make docs` and goreleaser's before hooks run them, so the reference
// pages, man pages and completion scripts always match the binary.
//
//	echoctl gen docs --dir docs/cli                 Markdown, one page a command
//	echoctl gen man --dir manpages [--gzip]         man pages, section 1
//	echoctl gen completions --dir completions       bash, zsh, fish, PowerShell

// newGenCmd builds `echoctl gen` and its subcommands.
func newGenCmd() *cobra.Command {
	gen := &cobra.Command{
		Use:    "gen",
		Short:  "Generate the CLI reference, man pages and shell completions (for packaging)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return usageError{fmt.Errorf("%q needs a subcommand: docs, man or completions", cmd.CommandPath())}
		},
	}
	gen.AddCommand(newGenDocsCmd(), newGenManCmd(), newGenCompletionsCmd())
	return gen
}

func newGenDocsCmd() *cobra.Command {
	var dir string
	cmd := &cobra.Command{
		Use:   "docs",
		Short: "Write the Markdown CLI reference, one page a command",
		Long: `Write the Markdown CLI reference, one page a command, into --dir, first
removing the echoctl*.md pages there so that a removed command's page goes too.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return asRuntimeError(genMarkdown(cmd.Root(), dir))
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "docs/cli", "directory to write to (created if missing)")
	return cmd
}

// genManOptions are the flags of `echoctl gen man`.
type genManOptions struct {
	dir  string
	date string
	gzip bool
}

func newGenManCmd() *cobra.Command {
	opts := &genManOptions{}
	cmd := &cobra.Command{
		Use:   "man",
		Short: "Write man pages (section 1), one a command",
		Long: `Write man pages (section 1), one a command, into --dir, first removing the
echoctl*.1 and echoctl*.1.gz pages there. The footer names this binary's
version and --date's month; without --date (or with the zero time,
0001-01-01), SOURCE_DATE_EPOCH or today.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return asRuntimeError(genMan(cmd.Root(), opts))
		},
	}
	opts.addFlags(cmd.Flags())
	return cmd
}

func (o *genManOptions) addFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.dir, "dir", "manpages", "directory to write to (created if missing)")
	fs.StringVar(&o.date, "date", "", "date in the footer, RFC 3339 (goreleaser's {{ .CommitDate }}) or YYYY-MM-DD")
	fs.BoolVar(&o.gzip, "gzip", false, "write NAME.1.gz, compressed reproducibly, as packages install them")
}

func newGenCompletionsCmd() *cobra.Command {
	var dir string
	cmd := &cobra.Command{
		Use:   "completions",
		Short: "Write the bash, zsh, fish and PowerShell completion scripts",
		Long: `Write echoctl.bash, echoctl.zsh, echoctl.fish and echoctl.ps1 into --dir:
the scripts that "echoctl completion SHELL" prints.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return asRuntimeError(genCompletions(cmd.Root(), dir))
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "completions", "directory to write to (created if missing)")
	return cmd
}

// genMarkdown writes root's Markdown reference into dir.
func genMarkdown(root *cobra.Command, dir string) error {
	if err := cleanDir(dir, "echoctl*.md"); err != nil {
		return err
	}
	root.DisableAutoGenTag = true // no generation date: the committed pages must be reproducible
	return doc.GenMarkdownTree(root, dir)
}

// genMan writes root's man pages into opts.dir.
func genMan(root *cobra.Command, opts *genManOptions) error {
	header := &doc.GenManHeader{
		Section: "1",
		Manual:  "echoctl manual",
		Source:  "echoctl " + buildInfo().Version,
	}
	if opts.date != "" {
		d, err := parseDate(opts.date)
		if err != nil {
			return usageError{err}
		}
		// goreleaser's CommitDate is the zero time when it has no git
		// information (a snapshot of a repository without a remote).
		if !d.IsZero() {
			header.Date = &d
		}
	}
	if header.Date == nil {
		// cobra reads SOURCE_DATE_EPOCH itself, but only once it has
		// written a first page, and takes any number.
		d, err := sourceDateEpoch()
		if err != nil {
			return usageError{err}
		}
		header.Date = d
	}
	if err := cleanDir(opts.dir, "echoctl*.1", "echoctl*.1.gz"); err != nil {
		return err
	}
	root.DisableAutoGenTag = true
	if err := doc.GenManTree(root, header, opts.dir); err != nil {
		return err
	}
	if !opts.gzip {
		return nil
	}
	pages, err := filepath.Glob(filepath.Join(opts.dir, "echoctl*.1"))
	if err != nil {
		return err
	}
	for _, page := range pages {
		if err := gzipFile(page); err != nil {
			return err
		}
	}
	return nil
}

// sourceDateEpoch returns the time SOURCE_DATE_EPOCH names, in seconds
// since 1970 (reproducible builds' convention), or nil when it is unset or
// empty: today.
func sourceDateEpoch() (*time.Time, error) {
	s := os.Getenv("SOURCE_DATE_EPOCH")
	if s == "" {
		return nil, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 || n > maxManEpoch {
		return nil, fmt.Errorf("invalid SOURCE_DATE_EPOCH %s from the environment: want seconds since 1970-01-01 UTC, from 0 to %d (9999-12-31)", quoteValue(s), maxManEpoch)
	}
	d := time.Unix(n, 0).UTC()
	return &d, nil
}

// maxManEpoch is 9999-12-31T23:59:59Z, the last date --date takes.
const maxManEpoch = 253402300799

// parseDate accepts RFC 3339 or a bare date.
func parseDate(s string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339, time.DateOnly} {
		if d, err := time.Parse(layout, s); err == nil {
			return d, nil
		}
	}
	return time.Time{}, fmt.Errorf("--date %q: want RFC 3339 (2026-11-25T04:29:55Z) or YYYY-MM-DD", s)
}

// gzipFile replaces path with path.gz, with no name or time in the gzip
// header, so that the same page always compresses to the same bytes.
func gzipFile(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return err
	}
	if _, err := zw.Write(data); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	if err := os.WriteFile(path+".gz", buf.Bytes(), 0o644); err != nil {
		return err
	}
	return os.Remove(path)
}

// completionScripts are the files genCompletions writes, by shell.
var completionScripts = []struct {
	shell, file string
	gen         func(*cobra.Command, *bytes.Buffer) error
}{
	{"bash", "echoctl.bash", func(c *cobra.Command, b *bytes.Buffer) error { return c.GenBashCompletionV2(b, true) }},
	{"zsh", "echoctl.zsh", func(c *cobra.Command, b *bytes.Buffer) error { return c.GenZshCompletion(b) }},
	{"fish", "echoctl.fish", func(c *cobra.Command, b *bytes.Buffer) error { return c.GenFishCompletion(b, true) }},
	{"powershell", "echoctl.ps1", func(c *cobra.Command, b *bytes.Buffer) error { return c.GenPowerShellCompletionWithDesc(b) }},
}

// strictCompletionCmd makes `echoctl completion SHELL` a usage error when
// SHELL is not one cobra writes a script for: cobra's own completion
// command prints its help and exits 0. Without SHELL it still prints the
// help.
func strictCompletionCmd(root *cobra.Command) {
	root.InitDefaultCompletionCmd()
	for _, comp := range root.Commands() {
		if comp.Name() != "completion" {
			continue
		}
		var shells []string
		for _, sub := range comp.Commands() {
			shells = append(shells, sub.Name())
		}
		comp.Args = cobra.ArbitraryArgs
		comp.RunE = func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return cmd.Help()
			}
			return usageError{fmt.Errorf("unknown shell %q for %q: want one of %s", args[0], cmd.CommandPath(), strings.Join(shells, ", "))}
		}
	}
}

// genCompletions writes root's completion scripts into dir: the same
// scripts as cobra's `echoctl completion SHELL` (with descriptions, its
// default).
func genCompletions(root *cobra.Command, dir string) error {
	if err := cleanDir(dir); err != nil {
		return err
	}
	for _, s := range completionScripts {
		var buf bytes.Buffer
		if err := s.gen(root, &buf); err != nil {
			return fmt.Errorf("%s completion: %w", s.shell, err)
		}
		if err := os.WriteFile(filepath.Join(dir, s.file), buf.Bytes(), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// cleanDir creates dir, or removes the files in it that match patterns;
// an empty dir is a usage error.
func cleanDir(dir string, patterns ...string) error {
	if dir == "" {
		return usageError{errors.New(`invalid --dir "": name the directory to write to`)}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, p := range patterns {
		old, err := filepath.Glob(filepath.Join(dir, p))
		if err != nil {
			return err
		}
		for _, f := range old {
			if err := os.Remove(f); err != nil {
				return err
			}
		}
	}
	return nil
}
