package servertest

import (
	"bytes"
	"compress/gzip"
	"encoding/csv"
	"strings"
	"testing"
)

// GuardedCSV parses a CSV file the server exports (after the byte-order
// mark the console writes for spreadsheets) and fails the test on any cell
// a spreadsheet would run as a formula: one that starts with = + - @, a
// tab or a carriage return. The server guards such cells behind an
// apostrophe. It returns the records, for the test to find the guarded
// cells where they should be.
func GuardedCSV(tb testing.TB, text string) [][]string {
	tb.Helper()
	recs, err := csv.NewReader(strings.NewReader(strings.TrimPrefix(text, "\uFEFF"))).ReadAll()
	if err != nil {
		tb.Fatalf("not CSV: %v", err)
	}
	for i, rec := range recs {
		for j, cell := range rec {
			if cell != "" && strings.ContainsRune("=+-@\t\r", rune(cell[0])) {
				tb.Errorf("record %d cell %d starts a formula: %q", i+1, j+1, cell)
			}
		}
	}
	return recs
}

// Gzip compresses data at level, as a client compresses a request body or
// the server a response.
func Gzip(tb testing.TB, data []byte, level int) []byte {
	tb.Helper()
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, level)
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := zw.Write(data); err != nil {
		tb.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}
