package main

import (
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// docs/CONFIGURATION.md lists every flag of fieldsyncd demo with its
// default, and nothing else, in its section fieldsyncd demo.
func TestDemoFlags_Documented(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "..", "docs", "CONFIGURATION.md"))
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string]string{}
	section := ""
	for _, line := range strings.Split(string(doc), "\n") {
		if strings.HasPrefix(line, "## ") {
			section = line
		}
		if section != "## fieldsyncd demo" || !strings.HasPrefix(line, "| `--") {
			continue
		}
		cells := strings.Split(line, "|")
		if len(cells) < 4 {
			t.Fatalf("demo row %q: want | flag | default | meaning |", line)
		}
		name := strings.Fields(strings.TrimPrefix(strings.Trim(strings.TrimSpace(cells[1]), "`"), "--"))[0]
		rows[name] = strings.Trim(strings.TrimSpace(cells[2]), "`")
	}
	fs, _ := newDemoFlags(io.Discard)
	fs.VisitAll(func(f *flag.Flag) {
		want := f.DefValue
		if want == "" {
			want = "none"
		}
		got, ok := rows[f.Name]
		switch {
		case !ok:
			t.Errorf("docs/CONFIGURATION.md has no row for demo --%s", f.Name)
		case got != want:
			t.Errorf("docs/CONFIGURATION.md: demo --%s defaults to %q, want %q", f.Name, got, want)
		}
		delete(rows, f.Name)
	})
	for name := range rows {
		t.Errorf("docs/CONFIGURATION.md documents demo --%s, which the demo does not have", name)
	}
}
