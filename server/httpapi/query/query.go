// Package query reads the queries of the warning list and of the
// statistics, as a client writes them (a URL query, or the console's
// form), into the service's typed queries. It checks their form: numbers,
// days, booleans and the values of each enumeration; a value that is
// wrong answers invalid_request naming its field, in the protocol's error
// format. What the service knows (units, scopes, page sizes) the service
// checks.
package query

import (
	"strconv"
	"strings"
	"time"

	"github.com/fieldsync/fieldsync/server/app"
	"github.com/fieldsync/fieldsync/syncproto"
)

// ListForm is the warning list's query as the client sent it, by the
// names of GET /v1/warnings: unit, status (comma-separated), risk,
// fraud_type, assignee, overdue, flagged, escalated, from, to, q (Text),
// sort, cursor, limit. The console fills in its form's, and shows them
// back.
type ListForm struct {
	Unit, Status, Risk, FraudType, Assignee, Overdue, Flagged, From, To, Text, Sort, Cursor, Limit string
	// Escalated: open escalations (true or 1) or none (false or 0).
	Escalated string
}

// ReadList reads a ListForm from the values get returns by name (a URL
// query's or a form's).
func ReadList(get func(name string) string) ListForm {
	return ListForm{
		Unit: get("unit"), Status: get("status"), Risk: get("risk"), FraudType: get("fraud_type"), Assignee: get("assignee"),
		Overdue: get("overdue"), Flagged: get("flagged"), From: get("from"), To: get("to"), Text: get("q"), Sort: get("sort"),
		Cursor: get("cursor"), Limit: get("limit"), Escalated: get("escalated"),
	}
}

// Parse checks the form of each value, in the order of the fields, and
// returns the typed query.
func (f ListForm) Parse() (app.ListQuery, error) {
	q := app.ListQuery{Unit: f.Unit, Risk: f.Risk, FraudType: f.FraudType, Assignee: f.Assignee, Text: f.Text, Sort: f.Sort, Cursor: f.Cursor}
	var err error
	if q.Limit, err = Count("limit", f.Limit); err != nil {
		return q, err
	}
	if f.Status != "" {
		for _, st := range strings.Split(f.Status, ",") {
			if !validStatus(st) {
				return q, syncproto.InvalidField("status", "unknown status %q", st)
			}
			q.Status = append(q.Status, st)
		}
	}
	if q.Risk != "" && !syncproto.ValidRisk(q.Risk) {
		return q, syncproto.InvalidField("risk", "risk must be high, medium or low")
	}
	if q.Assignee != "" && !syncproto.ValidUUID(q.Assignee) {
		return q, syncproto.InvalidField("assignee", "assignee must be a user id")
	}
	if q.Overdue, err = optionalBool("overdue", f.Overdue); err != nil {
		return q, err
	}
	if q.Flagged, err = optionalBool("flagged", f.Flagged); err != nil {
		return q, err
	}
	if q.Escalated, err = optionalBool("escalated", f.Escalated); err != nil {
		return q, err
	}
	if q.From, err = Day("from", f.From); err != nil {
		return q, err
	}
	if q.To, err = Day("to", f.To); err != nil {
		return q, err
	}
	return q, nil
}

// Stats reads the query of GET /v1/stats: a unit and the days from and to.
func Stats(unit, from, to string) (app.StatsQuery, error) {
	q := app.StatsQuery{Unit: unit}
	var err error
	if q.To, err = Day("to", to); err != nil {
		return q, err
	}
	if q.From, err = Day("from", from); err != nil {
		return q, err
	}
	return q, nil
}

// Count reads an optional non-negative integer: 0 when v is empty.
func Count(field, v string) (int, error) {
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, syncproto.InvalidField(field, "%s must be a non-negative number", field)
	}
	return n, nil
}

// Day reads an optional day, YYYY-MM-DD, as its midnight in Beijing time:
// the zero time when v is empty.
func Day(field, v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	t, err := time.ParseInLocation(time.DateOnly, v, syncproto.Beijing)
	if err != nil {
		return time.Time{}, syncproto.InvalidField(field, "%s must be a day as YYYY-MM-DD", field)
	}
	return t, nil
}

func validStatus(s string) bool {
	switch s {
	case syncproto.WarningNew, syncproto.WarningDispatched, syncproto.WarningAssigned,
		syncproto.WarningInProgress, syncproto.WarningResolved, syncproto.WarningClosed:
		return true
	}
	return false
}

// optionalBool reads true or 1, false or 0; nil when v is empty.
func optionalBool(field, v string) (*bool, error) {
	switch v {
	case "":
		return nil, nil
	case "true", "1":
		t := true
		return &t, nil
	case "false", "0":
		f := false
		return &f, nil
	}
	return nil, syncproto.InvalidField(field, "%s must be true or false", field)
}
