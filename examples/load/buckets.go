package main

import (
	"cmp"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"

	"github.com/fieldsync/fieldsync/server/store"
)

// bucketGrowth is what a load phase wrote into bbolt: each bucket before
// and after it, the ops it acknowledged, and the bytes of the pages its
// commits wrote. Issue 17 asks for the bytes per op by bucket, to see
// where a durable op's cost goes.
type bucketGrowth struct {
	before, after map[string]store.BucketSize
	acked         int64
	// pageBytes is what the commits wrote to the file: every page they
	// rewrote whole for a small change, so it exceeds what the buckets
	// grew by (the disk's write amplification).
	pageBytes int64
	// fileSize is the bbolt file's size when after was read.
	fileSize int64
	// warnings is how many the store holds: bucket warnings holds their
	// attempts, history and latest entries too (schema 8).
	warnings int
}

// bucketSizes walks the store's buckets, saying so: it reads the whole
// file and takes seconds on a large store.
func (e *env) bucketSizes(stderr io.Writer) (map[string]store.BucketSize, error) {
	fmt.Fprintf(stderr, "measuring what each bbolt bucket holds ...\n")
	sizes, err := e.srv.Store.BucketSizes()
	if err != nil {
		return nil, fmt.Errorf("bucket sizes: %w", err)
	}
	return sizes, nil
}

// bucketGrowth reads the buckets again after a load phase that found them
// as before, acknowledged acked ops and wrote pageBytes of pages.
func (e *env) bucketGrowth(before map[string]store.BucketSize, acked, pageBytes int64, stderr io.Writer) (*bucketGrowth, error) {
	after, err := e.bucketSizes(stderr)
	if err != nil {
		return nil, err
	}
	c, err := e.srv.Store.Contents()
	if err != nil {
		return nil, err
	}
	g := &bucketGrowth{before: before, after: after, acked: acked, pageBytes: pageBytes, warnings: c.Warnings}
	if fi, err := os.Stat(filepath.Join(e.srv.Dir, store.DBFile)); err == nil {
		g.fileSize = fi.Size()
	}
	return g, nil
}

// bucketRow is one bucket's line of the table.
type bucketRow struct {
	name                   string
	bytesPerOp, entriesOp  float64
	bytesAtEnd, entriesEnd int64
}

// rows are the buckets that grew or hold anything, those that grew most
// per op first; the total is not among them.
func (g *bucketGrowth) rows() []bucketRow {
	ops := float64(max(1, g.acked))
	var rows []bucketRow
	for name, a := range g.after {
		b := g.before[name]
		r := bucketRow{name: name, bytesPerOp: float64(a.Bytes-b.Bytes) / ops, entriesOp: float64(a.Entries-b.Entries) / ops,
			bytesAtEnd: a.Bytes, entriesEnd: a.Entries}
		if r.bytesPerOp != 0 || r.bytesAtEnd != 0 {
			rows = append(rows, r)
		}
	}
	slices.SortFunc(rows, func(x, y bucketRow) int {
		return cmp.Or(cmp.Compare(y.bytesPerOp, x.bytesPerOp), cmp.Compare(y.bytesAtEnd, x.bytesAtEnd), cmp.Compare(x.name, y.name))
	})
	return rows
}

func (g *bucketGrowth) print(w io.Writer) {
	warnings := max(1, g.warnings)
	fmt.Fprintf(w, "bbolt by bucket   bytes of keys and values (nested buckets under their parent) each bucket grew by in the load phase, net of overwrites, per acknowledged op (%d ops); and each bucket at the end, per warning (%d warnings)\n",
		g.acked, g.warnings)
	fmt.Fprintf(w, "                  %-12s %10s %12s %14s %12s\n", "bucket", "B/op", "entries/op", "B/warning end", "entries end")
	var total bucketRow
	for _, r := range g.rows() {
		fmt.Fprintf(w, "                  %-12s %10.1f %12.2f %14.1f %12d\n", r.name, r.bytesPerOp, r.entriesOp, float64(r.bytesAtEnd)/float64(warnings), r.entriesEnd)
		total.bytesPerOp += r.bytesPerOp
		total.entriesOp += r.entriesOp
		total.bytesAtEnd += r.bytesAtEnd
		total.entriesEnd += r.entriesEnd
	}
	fmt.Fprintf(w, "                  %-12s %10.1f %12.2f %14.1f %12d\n", "total", total.bytesPerOp, total.entriesOp, float64(total.bytesAtEnd)/float64(warnings), total.entriesEnd)
	pagesPerOp := float64(g.pageBytes) / float64(max(1, g.acked))
	fmt.Fprintf(w, "bbolt pages       %.1f MB of pages written by the load phase's commits = %.0f B per acknowledged op, %.1f x what the buckets grew by (pages are rewritten whole for a small change; each commit's meta page not counted)\n",
		float64(g.pageBytes)/1e6, pagesPerOp, pagesPerOp/max(1, total.bytesPerOp))
	fmt.Fprintf(w, "store file        %.0f MiB after the load phase = %.0f B per warning (keys and values: %.0f B per warning; the rest is pages' headers, free space and free pages)\n",
		mib(g.fileSize), float64(g.fileSize)/float64(warnings), float64(total.bytesAtEnd)/float64(warnings))
}
