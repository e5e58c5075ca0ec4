// Package feed reads and writes the daily warning feed of PROTOCOL.md
// section 8 in its CSV form.
//
// Every morning the national anti-fraud platform pushes a list of warning
// targets (people who are probably being defrauded right now) to the city
// center. Centers often receive or keep that list as a spreadsheet, so
// POST /v1/feed/warnings accepts text/csv beside JSON and MessagePack. This
// package turns such a file into syncproto.FeedWarning values.
//
// The first record is a header naming the columns by their JSON field names
// (external_id, name, phone, id_tail, address, unit, fraud_type, risk,
// warned_at, deadline), in any order; unknown columns are ignored, so an
// export with extra columns imports as it is. Spreadsheets are accommodated:
// a UTF-8 byte order mark is skipped, cells are trimmed, risks may be written
// 高/中/低, and times may be written in Beijing time without a zone
// ("2026-11-27 09:30:00").
//
// Import is row by row: one bad row never stops the others. ParseCSV returns
// one Row per data record, numbered from 1, each holding either a warning
// that passed FeedWarning.Validate or the *syncproto.Error saying why it did
// not, so the server can import the good rows and report the bad ones by
// number (syncproto.FeedInvalid). Only a problem with the file as a whole (no
// header, a missing required column, too many rows, a read error) fails the
// whole call.
//
// Every CSV the project writes goes through CSVWriter, whose cells pass
// SafeCell: a cell a spreadsheet would run as a formula gets an apostrophe
// in front, which ParseCSV takes off again.
//
// Rows carry personal data of people at risk; nothing here logs them, and
// row errors never quote a cell.
package feed
