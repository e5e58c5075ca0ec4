package feed

import (
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/fieldsync/fieldsync/syncproto"
)

// FeedbackColumns are the columns of a feedback file, in order.
var FeedbackColumns = []string{"external_id", "status", "outcome", "reached", "loss_fen", "unit", "cadre", "cadre_name",
	"warned_at", "first_contact_at", "resolved_at", "closed_at"}

// WriteFeedbackCSV writes outcomes for the national platform: one row per
// warning, times in RFC 3339 UTC, empty where not yet known, every cell
// through SafeCell.
func WriteFeedbackCSV(w io.Writer, items []syncproto.FeedbackItem) error {
	cw := NewCSVWriter(w)
	if err := cw.Write(FeedbackColumns); err != nil {
		return fmt.Errorf("write feedback: %w", err)
	}
	for _, it := range items {
		rec := []string{it.ExternalID, it.Status, it.Outcome, strconv.FormatBool(it.Reached), strconv.FormatInt(it.LossFen, 10),
			it.Unit, it.Cadre, it.CadreName, it.WarnedAt.UTC().Format(time.RFC3339),
			timeCell(it.FirstContactAt), timeCell(it.ResolvedAt), timeCell(it.ClosedAt)}
		if err := cw.Write(rec); err != nil {
			return fmt.Errorf("write feedback: %w", err)
		}
	}
	if err := cw.Flush(); err != nil {
		return fmt.Errorf("write feedback: %w", err)
	}
	return nil
}

func timeCell(t *time.Time) string {
	if t == nil {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}
