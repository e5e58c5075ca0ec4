package app

import (
	"context"

	"github.com/fieldsync/fieldsync/server/store"
	"github.com/fieldsync/fieldsync/syncproto"
)

// FlaggedWarning is a warning of the flag queue and its open flags.
type FlaggedWarning struct {
	Item  syncproto.WarningItem
	Flags []syncproto.Flag
}

// FlagQueue is the first page of the warnings with open flags in the
// caller's unit, nearest deadline first.
type FlagQueue struct {
	Warnings []FlaggedWarning
	// More is set when there are more than the page holds.
	More bool
}

// Flags returns up to limit warnings of the caller's unit that have open
// flags, each with them, for a lead to review. It lists them as List does
// (township, county and center users may; the read is audited).
func (a *App) Flags(ctx context.Context, p Principal, limit int) (*FlagQueue, error) {
	flagged := true
	list, err := a.List(ctx, p, ListQuery{Flagged: &flagged, Sort: store.SortDeadline, Limit: limit})
	if err != nil {
		return nil, err
	}
	q := &FlagQueue{More: list.More}
	for _, it := range list.Items {
		w, err := a.store.Warning(it.ID)
		if err != nil {
			return nil, err
		}
		if w == nil {
			continue // gone since the list was read
		}
		row := FlaggedWarning{Item: it}
		for _, f := range w.Flags {
			if !f.Resolved {
				row.Flags = append(row.Flags, f)
			}
		}
		q.Warnings = append(q.Warnings, row)
	}
	return q, nil
}
