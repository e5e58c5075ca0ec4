package feed

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/fieldsync/fieldsync/syncproto"
)

// MaxRows is the most data rows one CSV file may hold. A day's feed for a
// city is a few hundred to a few thousand rows; a bigger file is a mistake
// or an attack, and is refused whole with payload_too_large.
const MaxRows = 100_000

// DefaultLimit is the default size limit of one feed file, CSV sent to the
// API or a file uploaded in the console (fieldsyncd --feed-limit). A big
// city's daily feed is a few MiB.
const DefaultLimit = 16 << 20

// Column names: the JSON field names of syncproto.FeedWarning.
const (
	ColExternalID = "external_id"
	ColName       = "name"
	ColPhone      = "phone"
	ColIDTail     = "id_tail"
	ColAddress    = "address"
	ColUnit       = "unit"
	ColFraudType  = "fraud_type"
	ColRisk       = "risk"
	ColWarnedAt   = "warned_at"
	ColDeadline   = "deadline"
)

// columns is the order WriteCSV writes; ParseCSV takes any order.
var columns = []string{
	ColExternalID, ColName, ColPhone, ColIDTail, ColAddress,
	ColUnit, ColFraudType, ColRisk, ColWarnedAt, ColDeadline,
}

// required are the columns a file must have; besides them it needs phone or
// address (a person must be reachable). id_tail and deadline may be left
// out: the ID number is not always known, and the server's risk policy sets
// a deadline when the feed gives none.
var required = []string{ColExternalID, ColName, ColUnit, ColFraudType, ColRisk, ColWarnedAt}

// Columns returns the column names in the order WriteCSV writes them.
func Columns() []string { return append([]string(nil), columns...) }

// Row is one data record of a feed file.
type Row struct {
	// Num counts data records from 1: the first record after the header is
	// row 1. It is the row of syncproto.FeedInvalid.
	Num int
	// Line is the line of the file where the record starts (the header is
	// usually line 1), for a person looking at the file in an editor; it
	// differs from Num+1 after blank lines or cells spanning lines.
	Line int
	// Warning is the row's warning. When Err is set it holds what could be
	// read, which may be nothing.
	Warning syncproto.FeedWarning
	// Err is nil when Warning passed FeedWarning.Validate; otherwise it is
	// an invalid_request saying what is wrong, naming the column in
	// Details["field"] when one is at fault. It never quotes a cell. It is
	// the first of the row's problems.
	Err *syncproto.Error
	// Problems is every problem of the row, in Simplified Chinese, each
	// naming its column (Explain); empty when Err is nil.
	Problems []syncproto.FeedProblem
}

var utf8BOM = []byte{0xEF, 0xBB, 0xBF}

// ParseCSV reads a feed file: a header record, then one record per warning.
// It returns one Row per data record, in file order, each either valid
// against now (FeedWarning.Validate) or carrying its Err, so the caller can
// import the good rows and report the bad ones by Row.Num.
//
// The whole call fails only for the file as a whole: with an
// invalid_request *syncproto.Error when the file is empty, the header is not
// valid CSV, a column is named twice, or a required column (external_id,
// name, unit, fraud_type, risk, warned_at, and phone or address) is
// missing; with payload_too_large when there are more than MaxRows data
// records; and with a wrapped read error when r fails. ParseCSV does not
// limit the bytes it reads: the caller bounds r (the server's body limit).
//
// A cell that SafeCell guarded (an apostrophe before = + - @, a tab, a
// carriage return or another apostrophe) loses that apostrophe; then cells
// are trimmed of surrounding white space. Risk may be high, medium,
// low (any case) or 高, 中, 低 (also 高风险, 中风险, 低风险). Times are RFC 3339
// ("2026-11-27T09:30:00+08:00"), or Beijing time without a zone
// ("2026-11-27 09:30:00", "2026-11-27 09:30", "2026-11-27T09:30:00",
// "2026/11/27 09:30:00", "2026/11/27 9:30"); they are returned in UTC. An
// empty deadline means none.
func ParseCSV(r io.Reader, now time.Time) (rows []Row, err error) {
	br := bufio.NewReader(r)
	if b, err := br.Peek(len(utf8BOM)); err == nil && bytes.Equal(b, utf8BOM) {
		if _, err := br.Discard(len(utf8BOM)); err != nil {
			return nil, fmt.Errorf("feed: skip byte order mark: %w", err)
		}
	}
	cr := csv.NewReader(br)
	cr.FieldsPerRecord = -1 // a row with the wrong count is that row's error, not the file's

	header, err := cr.Read()
	var perr *csv.ParseError
	switch {
	case errors.Is(err, io.EOF):
		return nil, syncproto.Errorf(syncproto.CodeInvalidRequest,
			"the file is empty: its first line must be the header naming the columns (%s)", strings.Join(columns, ",")).With("reason", ReasonEmpty)
	case errors.As(err, &perr):
		return nil, syncproto.Errorf(syncproto.CodeInvalidRequest,
			"the header is not valid CSV (line %d, column %d): %v", perr.Line, perr.Column, perr.Err).With("reason", ReasonBadCSV).With("line", perr.Line)
	case err != nil:
		return nil, fmt.Errorf("feed: read header: %w", err)
	}
	index, herr := mapHeader(header)
	if herr != nil {
		return nil, herr
	}

	for num := 1; ; num++ {
		before := cr.InputOffset()
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if num > MaxRows {
			return nil, syncproto.Errorf(syncproto.CodePayloadTooLarge,
				"the file has more than %d rows: split it", MaxRows).With("max_rows", MaxRows).With("reason", ReasonTooManyRows)
		}
		if errors.As(err, &perr) {
			if cr.InputOffset() == before {
				// The reader made no progress; reading on would loop.
				return nil, syncproto.Errorf(syncproto.CodeInvalidRequest,
					"row %d is not valid CSV (line %d) and the rest cannot be read: %v", num, perr.StartLine, perr.Err).
					With("reason", ReasonBadCSV).With("line", perr.StartLine)
			}
			e := syncproto.Errorf(syncproto.CodeInvalidRequest,
				"row is not valid CSV (line %d, column %d): %v; quote a cell holding commas, quotes or line breaks, and double the quotes inside it",
				perr.Line, perr.Column, perr.Err).With("reason", ReasonBadCSV).With("line", perr.Line)
			rows = append(rows, Row{Num: num, Line: perr.StartLine, Err: e, Problems: []syncproto.FeedProblem{Explain(e)}})
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("feed: read row %d: %w", num, err)
		}
		line, _ := cr.FieldPos(0)
		row := Row{Num: num, Line: line}
		var errs []*syncproto.Error
		row.Warning, errs = parseRecord(rec, len(header), index, now)
		row.Err, row.Problems = explainAll(errs)
		rows = append(rows, row)
	}
	return rows, nil
}

// mapHeader returns the record index of each known column.
func mapHeader(header []string) (map[string]int, *syncproto.Error) {
	known := make(map[string]bool, len(columns))
	for _, c := range columns {
		known[c] = true
	}
	index := make(map[string]int, len(columns))
	for i, h := range header {
		name := strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\uFEFF")))
		if !known[name] {
			continue // unknown columns are ignored
		}
		if _, dup := index[name]; dup {
			return nil, syncproto.InvalidField(name, "the header names column %s twice", name).With("reason", ReasonDuplicateColumn)
		}
		index[name] = i
	}
	for _, c := range required {
		if _, ok := index[c]; !ok {
			return nil, syncproto.InvalidField(c,
				"the header has no column %s; the first line must name the columns (%s)", c, strings.Join(columns, ",")).With("reason", ReasonMissingColumn)
		}
	}
	_, phone := index[ColPhone]
	_, address := index[ColAddress]
	if !phone && !address {
		return nil, syncproto.InvalidField(ColPhone,
			"the header has neither a phone nor an address column: a person must be reachable").With("reason", ReasonMissingColumn)
	}
	return index, nil
}

// parseRecord turns one data record into a warning and validates it,
// returning every problem it has: each cell that cannot be read, then
// FeedWarning.Problems for the columns whose cells could be.
func parseRecord(rec []string, width int, index map[string]int, now time.Time) (syncproto.FeedWarning, []*syncproto.Error) {
	var f syncproto.FeedWarning
	if len(rec) != width {
		return f, []*syncproto.Error{syncproto.Errorf(syncproto.CodeInvalidRequest,
			"the row has %d cells but the header has %d; quote a cell holding commas", len(rec), width).
			With("reason", ReasonCellCount).With("cells", len(rec)).With("columns", width)}
	}
	var errs []*syncproto.Error
	// unread holds the columns already at fault, so Problems does not
	// report them again as empty.
	unread := map[string]bool{}
	cell := func(col string) string {
		i, ok := index[col]
		if !ok {
			return ""
		}
		v := rec[i]
		if !utf8.ValidString(v) {
			errs = append(errs, syncproto.InvalidField(col, "%s is not UTF-8 text: save the file as CSV UTF-8", col).With("reason", ReasonNotUTF8))
			unread[col] = true
			return ""
		}
		return strings.TrimSpace(plainCell(v))
	}
	strs := []struct {
		col string
		dst *string
	}{
		{ColExternalID, &f.ExternalID}, {ColName, &f.Name}, {ColPhone, &f.Phone},
		{ColIDTail, &f.IDTail}, {ColAddress, &f.Address}, {ColUnit, &f.Unit},
		{ColFraudType, &f.FraudType}, {ColRisk, &f.Risk},
	}
	for _, s := range strs {
		*s.dst = cell(s.col)
	}
	f.Risk = normalizeRisk(f.Risk)

	if warned := cell(ColWarnedAt); warned != "" {
		if t, ok := ParseTime(warned); ok {
			f.WarnedAt = t
		} else {
			errs = append(errs, badTime(ColWarnedAt))
			unread[ColWarnedAt] = true
		}
	}
	if deadline := cell(ColDeadline); deadline != "" {
		if t, ok := ParseTime(deadline); ok {
			f.Deadline = &t
		} else {
			errs = append(errs, badTime(ColDeadline))
			unread[ColDeadline] = true
		}
	}
	for _, e := range f.Problems(now) {
		field, _ := e.Details["field"].(string)
		if !unread[field] {
			errs = append(errs, e)
		}
	}
	return f, errs
}

func badTime(col string) *syncproto.Error {
	return syncproto.InvalidField(col,
		"%s is not a time: write RFC 3339 (2026-11-27T09:30:00+08:00) or Beijing time (2026-11-27 09:30:00)", col).With("reason", ReasonBadTime)
}

// normalizeRisk maps the spellings a spreadsheet may use to the protocol's
// risks; anything else is returned as it is, for Validate to refuse.
func normalizeRisk(s string) string {
	switch strings.ToLower(s) {
	case "high", "高", "高风险":
		return syncproto.RiskHigh
	case "medium", "中", "中风险":
		return syncproto.RiskMedium
	case "low", "低", "低风险":
		return syncproto.RiskLow
	}
	return s
}

// localLayouts are the zone-less layouts read as Beijing time: what
// spreadsheets in China write.
var localLayouts = []string{
	"2006-01-02 15:04:05",
	"2006-01-02 15:04",
	"2006-01-02T15:04:05",
	"2006/1/2 15:04:05",
	"2006/1/2 15:04",
}

// ParseTime reads a feed time: RFC 3339, or one of the zone-less layouts
// ParseCSV documents, in Beijing time. It returns the time in UTC, and false
// when s is none of them or lies outside the years 1 to 9999 (which RFC 3339,
// and so the JSON form of a warning, cannot hold).
func ParseTime(s string) (time.Time, bool) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		for _, layout := range localLayouts {
			if t, err = time.ParseInLocation(layout, s, syncproto.Beijing); err == nil {
				break
			}
		}
	}
	if err != nil {
		return time.Time{}, false
	}
	t = t.UTC()
	if y := t.Year(); y < 1 || y > 9999 {
		return time.Time{}, false
	}
	return t, true
}

// WriteCSV writes rows as a feed file that ParseCSV reads back: a header
// with every column, then one record per warning, times in RFC 3339 with
// Beijing's offset, an empty cell for no deadline. Cells go through
// SafeCell, so a spreadsheet runs none as a formula, and ParseCSV takes the
// apostrophe off again; a value with surrounding white space comes back
// trimmed. WriteCSV writes no byte order mark; Excel wants one to see
// UTF-8, and ParseCSV accepts one.
func WriteCSV(w io.Writer, rows []syncproto.FeedWarning) error {
	cw := NewCSVWriter(w)
	if err := cw.Write(columns); err != nil {
		return fmt.Errorf("feed: write header: %w", err)
	}
	rec := make([]string, len(columns))
	for i := range rows {
		f := &rows[i]
		rec[0], rec[1], rec[2], rec[3], rec[4] = f.ExternalID, f.Name, f.Phone, f.IDTail, f.Address
		rec[5], rec[6], rec[7] = f.Unit, f.FraudType, f.Risk
		rec[8] = formatTime(f.WarnedAt)
		rec[9] = ""
		if f.Deadline != nil {
			rec[9] = formatTime(*f.Deadline)
		}
		if err := cw.Write(rec); err != nil {
			return fmt.Errorf("feed: write row %d: %w", i+1, err)
		}
	}
	if err := cw.Flush(); err != nil {
		return fmt.Errorf("feed: %w", err)
	}
	return nil
}

// formatTime writes t in RFC 3339 with Beijing's offset, which a person
// reading the file recognizes, unless that would push it past year 9999.
func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	if b := t.In(syncproto.Beijing); b.Year() <= 9999 {
		t = b
	}
	return t.Format(time.RFC3339Nano)
}
