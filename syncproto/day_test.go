package syncproto_test

import (
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/syncproto"
)

// TestDayOf: a day is a Beijing day, whatever the zone of the time given.
func TestDayOf(t *testing.T) {
	for _, tc := range []struct {
		name string
		at   time.Time
		want uint32
	}{
		{"BeijingMidnight", time.Date(2026, 11, 27, 0, 0, 0, 0, syncproto.Beijing), 20261127},
		{"LastSecondOfTheDay", time.Date(2026, 11, 27, 23, 59, 59, 0, syncproto.Beijing), 20261127},
		{"UTCEveningIsTomorrow", time.Date(2026, 11, 27, 16, 0, 0, 0, time.UTC), 20261128},
		{"UTCJustBefore", time.Date(2026, 11, 27, 15, 59, 59, 0, time.UTC), 20261127},
		{"NewYear", time.Date(2025, 12, 31, 16, 30, 0, 0, time.UTC), 20260101},
		{"LeapDay", time.Date(2024, 2, 29, 12, 0, 0, 0, syncproto.Beijing), 20240229},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := syncproto.DayOf(tc.at); got != tc.want {
				t.Fatalf("DayOf(%s) = %d, want %d", tc.at, got, tc.want)
			}
		})
	}
}

func TestFormatDay(t *testing.T) {
	for _, tc := range []struct {
		day  uint32
		want string
	}{
		{20261127, "2026-11-27"},
		{20240229, "2024-02-29"},
		{10101, "0001-01-01"},
	} {
		if got := syncproto.FormatDay(tc.day); got != tc.want {
			t.Errorf("FormatDay(%d) = %q, want %q", tc.day, got, tc.want)
		}
	}
	at := time.Date(2026, 11, 27, 20, 0, 0, 0, time.UTC)
	if got := syncproto.FormatDay(syncproto.DayOf(at)); got != at.In(syncproto.Beijing).Format(time.DateOnly) {
		t.Errorf("FormatDay(DayOf(%s)) = %q, want the Beijing date", at, got)
	}
}

// TestDayStart: a day begins and ends at Beijing midnight, 16:00 UTC.
func TestDayStart(t *testing.T) {
	for _, tc := range []struct {
		name       string
		at         time.Time
		start, end time.Time
	}{
		{"Morning", time.Date(2026, 11, 27, 9, 30, 0, 0, syncproto.Beijing),
			time.Date(2026, 11, 26, 16, 0, 0, 0, time.UTC), time.Date(2026, 11, 27, 16, 0, 0, 0, time.UTC)},
		{"Midnight", time.Date(2026, 11, 27, 0, 0, 0, 0, syncproto.Beijing),
			time.Date(2026, 11, 26, 16, 0, 0, 0, time.UTC), time.Date(2026, 11, 27, 16, 0, 0, 0, time.UTC)},
		{"UTCEvening", time.Date(2026, 11, 27, 23, 0, 0, 0, time.UTC),
			time.Date(2026, 11, 27, 16, 0, 0, 0, time.UTC), time.Date(2026, 11, 28, 16, 0, 0, 0, time.UTC)},
		{"EndOfMonth", time.Date(2026, 11, 30, 23, 0, 0, 0, syncproto.Beijing),
			time.Date(2026, 11, 29, 16, 0, 0, 0, time.UTC), time.Date(2026, 11, 30, 16, 0, 0, 0, time.UTC)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := syncproto.DayStart(tc.at); !got.Equal(tc.start) || got.Location() != syncproto.Beijing {
				t.Errorf("DayStart = %s, want %s in Beijing", got, tc.start)
			}
			if got := syncproto.NextDayStart(tc.at); !got.Equal(tc.end) || got.Location() != syncproto.Beijing {
				t.Errorf("NextDayStart = %s, want %s in Beijing", got, tc.end)
			}
		})
	}
}
