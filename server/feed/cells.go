package feed

import (
	"encoding/csv"
	"fmt"
	"io"
)

// Spreadsheets (Excel, WPS, LibreOffice) read a CSV cell that begins with
// =, +, - or @ as a formula, and some also after a tab or a carriage
// return: a cell such as =HYPERLINK(...) or =cmd|' /C calc'!A0 in a feed
// row would run, or send data away, on the desk of whoever opens an
// export. Every CSV the project writes goes through SafeCell, which puts
// an apostrophe before such a cell: spreadsheets take it as "text" and do
// not show it. ParseCSV takes the apostrophe off again, so a feed file
// written by WriteCSV reads back as it was.

// startsFormula reports whether a spreadsheet would read a cell beginning
// with b as a formula.
func startsFormula(b byte) bool {
	switch b {
	case '=', '+', '-', '@', '\t', '\r':
		return true
	}
	return false
}

// escaped reports whether v begins with an apostrophe that SafeCell put
// there: one followed by a formula start or by another apostrophe.
func escaped(v string) bool {
	return len(v) >= 2 && v[0] == '\'' && (startsFormula(v[1]) || v[1] == '\'')
}

// SafeCell returns v as a cell no spreadsheet runs: with an apostrophe in
// front when it begins with = + - @, a tab or a carriage return. A value
// that already begins the way an escaped one does (an apostrophe, then one
// of those or another apostrophe) gets one too, so that taking one
// apostrophe off always gives v back.
func SafeCell(v string) string {
	if v != "" && (startsFormula(v[0]) || escaped(v)) {
		return "'" + v
	}
	return v
}

// plainCell undoes SafeCell.
func plainCell(v string) string {
	if escaped(v) {
		return v[1:]
	}
	return v
}

// CSVWriter writes CSV records with every cell through SafeCell: the one
// way the project writes a CSV file that a person may open.
type CSVWriter struct {
	w   *csv.Writer
	rec []string
}

// NewCSVWriter writes to w.
func NewCSVWriter(w io.Writer) *CSVWriter {
	return &CSVWriter{w: csv.NewWriter(w)}
}

// Write writes one record; rec is not changed.
func (cw *CSVWriter) Write(rec []string) error {
	cw.rec = cw.rec[:0]
	for _, v := range rec {
		cw.rec = append(cw.rec, SafeCell(v))
	}
	if err := cw.w.Write(cw.rec); err != nil {
		return fmt.Errorf("write csv: %w", err)
	}
	return nil
}

// Flush writes what is buffered and returns the first error of any write.
func (cw *CSVWriter) Flush() error {
	cw.w.Flush()
	if err := cw.w.Error(); err != nil {
		return fmt.Errorf("write csv: %w", err)
	}
	return nil
}
