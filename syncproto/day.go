package syncproto

import "time"

// Beijing is China Standard Time, UTC+8: the zone of the center's day.
// Statistics count warnings by their Beijing day, a photo quota renews at
// Beijing midnight, and the feed's times written without a zone are
// Beijing times. It is a fixed zone so that no tzdata is needed; China has
// had no daylight saving time since 1991.
var Beijing = time.FixedZone("CST", 8*3600)

// DayOf is the Beijing day of t as the number YYYYMMDD, which orders as
// the days do.
func DayOf(t time.Time) uint32 {
	y, m, d := t.In(Beijing).Date()
	return uint32(y*10000 + int(m)*100 + d)
}

// FormatDay writes a day of DayOf as YYYY-MM-DD, the form of a day on the
// wire.
func FormatDay(d uint32) string {
	return time.Date(int(d/10000), time.Month(d/100%100), int(d%100), 0, 0, 0, 0, Beijing).Format(time.DateOnly)
}

// DayStart is the Beijing midnight that begins t's Beijing day.
func DayStart(t time.Time) time.Time {
	y, m, d := t.In(Beijing).Date()
	return time.Date(y, m, d, 0, 0, 0, 0, Beijing)
}

// NextDayStart is the Beijing midnight that ends t's Beijing day.
func NextDayStart(t time.Time) time.Time {
	y, m, d := t.In(Beijing).Date()
	return time.Date(y, m, d+1, 0, 0, 0, 0, Beijing)
}
