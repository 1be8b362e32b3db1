package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// writeHTML draws the runs on one HTML page at o.html, beside the Markdown
// page: a section a mode, each server's best round (by the mode's headline
// figure, as in the tables) on the same axes. echoctl draws it (echoctl
// bench report), from each run's own --json output, so that the page is
// the one bench --html and bench report make.
func writeHTML(ctx context.Context, o *options, servers []*server, modes []*mode, runs []*runResult) error {
	dir, err := os.MkdirTemp("", "benchrun-html-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	idx := index(runs)
	args := []string{"bench", "report", "--html", o.html, "--title", "echoctl against the echo servers users would pick instead (" + o.command + ")"}
	sections := 0
	for i, m := range modes {
		var files []string
		for j, s := range servers {
			best, _, ok := idx.bestRun(m.id, s.id, figures(m.kind)[0])
			if !ok || best.raw == nil {
				continue
			}
			labelled, err := withLabel(best.raw, s.name)
			if err != nil {
				return fmt.Errorf("%s, %s: %w", m.id, s.id, err)
			}
			f := filepath.Join(dir, fmt.Sprintf("%d-%d.json", i, j))
			if err := os.WriteFile(f, labelled, 0o644); err != nil {
				return err
			}
			files = append(files, f)
		}
		if len(files) > 0 {
			args = append(args, "--section", m.title+"="+strings.Join(files, ","))
			sections++
		}
	}
	if sections == 0 {
		return fmt.Errorf("no run counted: nothing to draw")
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, o.echoctl, args...)
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("echoctl bench report: %v: %s", err, strings.TrimSpace(stderr.String()))
	}
	return nil
}

// withLabel sets the label of a bench --json result, which names its
// series in the page.
func withLabel(raw []byte, label string) ([]byte, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, err
	}
	l, _ := json.Marshal(label)
	m["label"] = l
	return json.Marshal(m)
}
