package cmd

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/echoctl/echoctl/internal/report"
	"github.com/echoctl/echoctl/pkg/bench"
	"github.com/echoctl/echoctl/pkg/echo"
)

// benchOutputs says where bench writes its result: the table, --json or
// --json-stream on standard output, and the --hgrm and --html files.
type benchOutputs struct {
	json, stream bool
	label        string
	hgrm, html   string
	// inputs are the files the run reads (the config file, the TLS
	// files), which no output may be.
	inputs []namedPath
}

func (o *benchOutputs) addFlags(fs *pflag.FlagSet) {
	fs.BoolVar(&o.json, "json", false, "print the result as one JSON object instead of a table")
	fs.BoolVar(&o.stream, "json-stream", false, "print one JSON object a line: each second of the measured window as it ends (throughput, errors, latency percentiles of that second), then the result as --json has it")
	fs.StringVar(&o.label, "label", "", "name the run in the result's label field, which bench report's legends show")
	fs.StringVar(&o.hgrm, "hgrm", "", "write the latency distribution to `FILE` in HdrHistogram's percentile format (.hgrm, milliseconds), which its plotter reads")
	fs.StringVar(&o.html, "html", "", "write the run as one self-contained HTML page to `FILE`: settings, throughput and errors each second, latency percentile curve")
}

// outputFiles are the --hgrm and --html files, created before the run so
// that a path that cannot be written is refused before any load.
type outputFiles struct {
	hgrm, html *os.File
}

// create creates the files o names; the error is a usage error's. It
// refuses, before creating any, an output that is the same file as the
// other or as an input.
func (o benchOutputs) create() (*outputFiles, error) {
	var outputs []namedPath
	if o.hgrm != "" {
		outputs = append(outputs, namedPath{"--hgrm", o.hgrm})
	}
	if o.html != "" {
		outputs = append(outputs, namedPath{"--html", o.html})
	}
	for _, out := range outputs {
		if out.path == "-" {
			return nil, fmt.Errorf(`invalid %s "-": standard output is bench's result; name a file (bench report --html - writes a page there)`, out.name)
		}
	}
	if err := checkOutputs(outputs, o.inputs); err != nil {
		return nil, err
	}
	f := &outputFiles{}
	var err error
	if o.hgrm != "" {
		if f.hgrm, err = os.Create(o.hgrm); err != nil {
			return nil, fmt.Errorf("invalid --hgrm: %w", err)
		}
	}
	if o.html != "" {
		if f.html, err = os.Create(o.html); err != nil {
			f.discard()
			return nil, fmt.Errorf("invalid --html: %w", err)
		}
	}
	return f, nil
}

// write writes res to the files and closes them.
func (f *outputFiles) write(o benchOutputs, res *bench.Result) error {
	var errs []error
	if f.hgrm != nil {
		errs = append(errs, res.WriteHgrm(f.hgrm), f.hgrm.Close())
	}
	if f.html != nil {
		name := res.Label
		if name == "" {
			name = res.Addr
		}
		p := report.Page{Title: fmt.Sprintf("echoctl bench: %s against %s", res.Mode, res.Addr),
			Sections: []report.Section{{Runs: []report.Run{{Name: name, Result: res}}}}}
		errs = append(errs, report.WritePage(f.html, p), f.html.Close())
	}
	return errors.Join(errs...)
}

// discard closes and removes the files, when there is no result to write.
func (f *outputFiles) discard() {
	for _, file := range []*os.File{f.hgrm, f.html} {
		if file != nil {
			file.Close()
			os.Remove(file.Name())
		}
	}
}

// A namedPath is a file and what names it on the command line: a flag
// ("--html"), or for an input, words that say which file it is ("the
// --tls-ca file").
type namedPath struct {
	name, path string
}

// checkOutputs refuses an output that is the same file as an output
// before it or as an input: writing it would destroy the other (a result
// given to bench report, or the --hgrm file that --html replaced).
func checkOutputs(outputs, inputs []namedPath) error {
	for i, out := range outputs {
		for _, other := range outputs[:i] {
			if sameFile(out.path, other.path) {
				return fmt.Errorf("invalid %s %q: %s writes that file too; give each output a file of its own", out.name, out.path, other.name)
			}
		}
		for _, in := range inputs {
			if sameFile(out.path, in.path) {
				return fmt.Errorf("invalid %s %q: it is %s, an input it would overwrite", out.name, out.path, in.name)
			}
		}
	}
	return nil
}

// sameFile reports whether paths a and b are one file: by os.SameFile when
// both exist (a link, another spelling of the path), else by their cleaned
// absolute paths.
func sameFile(a, b string) bool {
	ai, aerr := os.Stat(a)
	bi, berr := os.Stat(b)
	if aerr == nil && berr == nil {
		return os.SameFile(ai, bi)
	}
	absA, aerr := filepath.Abs(a)
	absB, berr := filepath.Abs(b)
	return aerr == nil && berr == nil && absA == absB
}

// streamSeconds makes cfg write each second to out as a JSON line, as it
// ends.
func streamSeconds(cfg *bench.Config, out io.Writer) {
	enc := json.NewEncoder(out)
	cfg.EachSecond = func(s bench.Second) { enc.Encode(s) }
}

// writeResult writes res to out as o says: one JSON line after the
// seconds, one indented JSON object, or the table.
func writeResult(o benchOutputs, res *bench.Result, out io.Writer) error {
	var err error
	switch {
	case o.stream:
		err = json.NewEncoder(out).Encode(res)
	case o.json:
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		err = enc.Encode(res)
	default:
		err = res.WriteTable(out)
	}
	if err != nil {
		return outputError(&echo.OutputError{Err: err}) // "write standard output: ...", as send's
	}
	return nil
}

// reportOptions are bench report's flags.
type reportOptions struct {
	html     string
	title    string
	sections []string
}

func newBenchReportCmd(streams Streams) *cobra.Command {
	o := &reportOptions{}
	cmd := &cobra.Command{
		Use:   "report FILE... --html OUT",
		Short: "Draw bench results on one HTML page, on the same axes, to compare them",
		Long: `Draw the results of separate bench runs, written by bench --json (or
--json-stream), on one self-contained HTML page: a table of their settings
and figures, their throughput, errors and p50/p99 latency each second, and
their latency percentile curves on a log scale, all runs on the same axes.
Each run is named by its label (bench --label) or else by its file's name.

The page needs no network to open: the charting library (dygraphs) is
inside it.

With --section 'TITLE=FILE,FILE,...' (repeatable), the page has a section
of its own for those files, under that title, after the FILE arguments'
(make bench draws each mode's servers so).

Exit codes:
  0  the page was written
  1  the page could not be written
  2  bad flags or arguments, or a FILE that is not a bench result`,
		Example: `  echoctl bench --addr 127.0.0.1:10000 --label echoctl --json > echoctl.json
  echoctl bench --addr 127.0.0.1:10001 --label socat --json > socat.json
  echoctl bench report echoctl.json socat.json --html compare.html`,
		Args: cobra.ArbitraryArgs,
		RunE: func(_ *cobra.Command, args []string) error {
			p, err := o.page(args)
			if err != nil {
				return usageError{err}
			}
			if o.html == "-" {
				if err := report.WritePage(streams.Out, p); err != nil {
					return runtimeError{fmt.Errorf("write standard output: %w", err)}
				}
				return nil
			}
			if err := report.WriteFile(o.html, p); err != nil {
				return runtimeError{err}
			}
			return nil
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&o.html, "html", "", "write the page to `FILE` (required; - for standard output)")
	fs.StringVar(&o.title, "title", "echoctl bench report", "the page's title")
	fs.StringArrayVar(&o.sections, "section", nil, "a section of its own: `TITLE=FILE,FILE,...` (repeatable)")
	cmd.SetOut(streams.Out)
	return cmd
}

// page reads the files into the page the options describe. It refuses an
// empty file name, and an --html that is one of the files it reads.
func (o *reportOptions) page(files []string) (report.Page, error) {
	if o.html == "" {
		return report.Page{}, errors.New("bench report needs --html FILE, the page to write")
	}
	if len(files) == 0 && len(o.sections) == 0 {
		return report.Page{}, errors.New("bench report needs result files (bench --json writes one)")
	}
	if slices.Contains(files, "") {
		return report.Page{}, errors.New("bench report: a FILE argument is empty: name a result file")
	}
	type section struct {
		title string
		files []string
	}
	var sections []section
	if len(files) > 0 {
		sections = append(sections, section{"", files})
	}
	for _, spec := range o.sections {
		title, list, ok := strings.Cut(spec, "=")
		switch {
		case !ok || strings.TrimSpace(title) == "":
			return report.Page{}, fmt.Errorf("invalid --section %q: want TITLE=FILE,FILE,..., with a title", spec)
		case list == "":
			return report.Page{}, fmt.Errorf("invalid --section %q: want TITLE=FILE,FILE,..., with files after the =", spec)
		}
		names := strings.Split(list, ",")
		if slices.Contains(names, "") {
			return report.Page{}, fmt.Errorf("invalid --section %q: a file name is empty (want TITLE=FILE,FILE,...)", spec)
		}
		sections = append(sections, section{title, names})
	}
	var inputs []namedPath
	for _, s := range sections {
		for _, f := range s.files {
			inputs = append(inputs, namedPath{fmt.Sprintf("the result file %q", f), f})
		}
	}
	if err := checkOutputs([]namedPath{{"--html", o.html}}, inputs); err != nil {
		return report.Page{}, err
	}
	p := report.Page{Title: o.title}
	for _, s := range sections {
		rs := report.Section{Title: s.title}
		for _, f := range s.files {
			r, err := report.ReadRun(f)
			if err != nil {
				return report.Page{}, err
			}
			rs.Runs = append(rs.Runs, r)
		}
		p.Sections = append(p.Sections, rs)
	}
	return p, nil
}
