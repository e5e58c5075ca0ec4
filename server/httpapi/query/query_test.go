package query_test

import (
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/server/httpapi/query"
	"github.com/fieldsync/fieldsync/syncproto"
)

func TestListForm_Parse(t *testing.T) {
	form := query.ReadList(values{
		"unit": "411002", "status": "new,closed", "risk": "high", "assignee": "0195b6c2-7a3e-7c1d-9f00-123456789abc",
		"overdue": "1", "flagged": "false", "from": "2026-03-01", "to": "2026-03-07", "q": " 张 ", "sort": "deadline",
		"cursor": "c", "limit": "20", "escalated": "1",
	}.get)
	q, err := form.Parse()
	if err != nil {
		t.Fatal(err)
	}
	from := time.Date(2026, 3, 1, 0, 0, 0, 0, syncproto.Beijing)
	switch {
	case q.Unit != "411002" || len(q.Status) != 2 || q.Status[1] != syncproto.WarningClosed || q.Risk != "high",
		q.Overdue == nil || !*q.Overdue || q.Flagged == nil || *q.Flagged || q.Escalated == nil || !*q.Escalated,
		!q.From.Equal(from) || !q.To.Equal(from.AddDate(0, 0, 6)),
		q.Text != " 张 " || q.Sort != "deadline" || q.Cursor != "c" || q.Limit != 20:
		t.Fatalf("parsed %+v", q)
	}
	if q, err := (query.ListForm{}).Parse(); err != nil || q.Overdue != nil || !q.From.IsZero() || q.Limit != 0 {
		t.Fatalf("an empty form parsed to %+v, %v", q, err)
	}
}

// Each value of the wrong form is invalid_request naming its field.
func TestListForm_ParseRefuses(t *testing.T) {
	for _, c := range []struct {
		name  string
		form  query.ListForm
		field string
	}{
		{"Limit", query.ListForm{Limit: "-1"}, "limit"},
		{"Status", query.ListForm{Status: "new,lost"}, "status"},
		{"Risk", query.ListForm{Risk: "huge"}, "risk"},
		{"Assignee", query.ListForm{Assignee: "bob"}, "assignee"},
		{"Overdue", query.ListForm{Overdue: "yes"}, "overdue"},
		{"Flagged", query.ListForm{Flagged: "2"}, "flagged"},
		{"Escalated", query.ListForm{Escalated: "yes"}, "escalated"},
		{"From", query.ListForm{From: "2026-3-1"}, "from"},
		{"To", query.ListForm{To: "tomorrow"}, "to"},
		// The first field at fault is the one named.
		{"FirstFault", query.ListForm{Risk: "huge", To: "tomorrow"}, "risk"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := c.form.Parse()
			wantField(t, err, c.field)
		})
	}
}

func TestStats(t *testing.T) {
	q, err := query.Stats("4110", "", "2026-03-07")
	if err != nil || q.Unit != "4110" || !q.From.IsZero() || !q.To.Equal(time.Date(2026, 3, 7, 0, 0, 0, 0, syncproto.Beijing)) {
		t.Fatalf("parsed %+v, %v", q, err)
	}
	_, err = query.Stats("", "bad", "bad")
	wantField(t, err, "to")
}

func wantField(t *testing.T, err error, field string) {
	t.Helper()
	e := syncproto.AsError(err)
	if e == nil || e.Code != syncproto.CodeInvalidRequest || e.Details["field"] != field {
		t.Fatalf("error %v, want invalid_request on %s", err, field)
	}
}

type values map[string]string

func (v values) get(name string) string { return v[name] }
