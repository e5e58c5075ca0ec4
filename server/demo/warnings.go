package demo

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/fieldsync/fieldsync/syncproto"
)

// FraudType is a kind of fraud a warning target is exposed to, with its
// share of the feed.
type FraudType struct {
	Name string
	// Weight is the type's share of warnings in percent.
	Weight int
}

// fraudTypes follow the shares China's Ministry of Public Security reports:
// task-scam "brushing" (刷单返利) is the commonest, fake investment the
// costliest and second; fake loans and fake customer service follow; five
// types make up most cases.
var fraudTypes = []FraudType{
	{"刷单返利", 30},
	{"虚假投资理财", 20},
	{"虚假贷款", 12},
	{"冒充客服", 12},
	{"冒充公检法", 8},
	{"虚假征信", 6},
	{"冒充熟人/领导", 6},
	{"网络游戏虚假交易", 3},
	{"婚恋交友", 3},
}

// FraudTypes returns the fraud types Warnings draws from, commonest first.
func FraudTypes() []FraudType { return slices.Clone(fraudTypes) }

// riskWeight is a risk level's share of warnings in percent.
type riskWeight struct {
	risk   string
	weight int
}

// riskWeights: about 20% high, 50% medium, 30% low.
var riskWeights = []riskWeight{
	{syncproto.RiskHigh, 20},
	{syncproto.RiskMedium, 50},
	{syncproto.RiskLow, 30},
}

// hourWeights is how warnings spread over the hours of a Beijing day: few at
// night, most while people are at work and online, a long evening tail.
var hourWeights = [24]float64{
	1, 1, 1, 1, 1, 1, 2, 4, 7, 9, 10, 10,
	8, 8, 10, 10, 10, 9, 7, 7, 7, 6, 4, 2,
}

// Shares of warnings addressed above the village: the platform knows the
// person's village most of the time, otherwise only the township or county,
// and someone there must dispatch.
const (
	townshipShare = 0.14
	countyShare   = 0.06
)

// Warnings returns a day's feed of n synthetic warning targets in tree's
// villages, deterministic for a given tree, day, n and seed.
//
// The day is day's calendar day in Beijing time. When day is midnight the
// warnings spread over the whole day; otherwise over the day up to day, so
// Warnings(tree, time.Now(), n, seed) is today's feed so far and validates
// against the current time. Warnings are in warned_at order, with external
// ids GJFZ-<yyyymmdd>-<seq> numbered from 000001 in that order: the same
// day's feed under another seed reuses the ids, as a re-sent feed would, so
// a load program wanting distinct warnings uses distinct days.
//
// About 80% of warnings are addressed to a village, 14% to its township and
// 6% to its county; the address always names the village. Deadline is left
// nil for the server's risk policy. It returns nil when n < 1 or the tree
// has no village.
func Warnings(tree *Tree, day time.Time, n int, seed int64) []syncproto.FeedWarning {
	rows, _ := feedDay(tree, day, n, seed)
	return rows
}

// feedDay is Warnings, with the village each row's address names.
func feedDay(tree *Tree, day time.Time, n int, seed int64) ([]syncproto.FeedWarning, []string) {
	villages := tree.Villages()
	if n < 1 || len(villages) == 0 {
		return nil, nil
	}
	names := make(map[string]string, len(tree.Units))
	for _, u := range tree.Units {
		names[u.Code] = u.Name
	}
	r := rand.New(rand.NewPCG(uint64(seed), 0x7761726e696e6773)) // "warnings"

	start := syncproto.DayStart(day)
	span := 24 * time.Hour
	if d := day.Sub(start); d > 0 {
		span = d
	}
	times := make([]time.Time, n)
	for i := range times {
		times[i] = start.Add(timeOfDay(r, span)).UTC()
	}
	slices.SortFunc(times, time.Time.Compare)

	date := start.Format("20060102")
	warnings := make([]syncproto.FeedWarning, n)
	homes := make([]string, n)
	for i := range warnings {
		village := villages[r.IntN(len(villages))]
		homes[i] = village
		township := syncproto.ParentCode(village)
		unit := village
		switch u := r.Float64(); {
		case u < countyShare:
			unit = syncproto.ParentCode(township)
		case u < countyShare+townshipShare:
			unit = township
		}
		warnings[i] = syncproto.FeedWarning{
			ExternalID: fmt.Sprintf("GJFZ-%s-%06d", date, i+1),
			Name:       personName(r),
			Phone:      phone(r),
			IDTail:     idTail(r),
			Address:    address(r, names[township], names[village]),
			Unit:       unit,
			FraudType:  pickWeighted(r, fraudTypes, func(t FraudType) int { return t.Weight }).Name,
			Risk:       pickWeighted(r, riskWeights, func(w riskWeight) int { return w.weight }).risk,
			WarnedAt:   times[i],
		}
	}
	return warnings, homes
}

// timeOfDay draws an offset into a day, below span, by hourWeights.
func timeOfDay(r *rand.Rand, span time.Duration) time.Duration {
	var total float64
	for h, w := range hourWeights {
		total += w * hourPart(h, span)
	}
	u := r.Float64() * total
	for h, w := range hourWeights {
		mass := w * hourPart(h, span)
		if u < mass {
			d := time.Duration(h)*time.Hour + time.Duration(u/w*float64(time.Hour))
			return min(d, span-1).Truncate(time.Second)
		}
		u -= mass
	}
	return (span - 1).Truncate(time.Second) // rounding left u at the very end
}

// hourPart is how much of hour h lies before span, from 0 to 1.
func hourPart(h int, span time.Duration) float64 {
	in := span - time.Duration(h)*time.Hour
	return float64(min(max(in, 0), time.Hour)) / float64(time.Hour)
}

// phone draws a well-formed, made-up mobile number: 1[3-9]x and 8 digits.
func phone(r *rand.Rand) string {
	return fmt.Sprintf("%s%08d", phonePrefixes[r.IntN(len(phonePrefixes))], r.IntN(100_000_000))
}

// idTail draws the last four characters of an ID number; its check digit is
// X one time in eleven.
func idTail(r *rand.Rand) string {
	if r.IntN(11) == 10 {
		return fmt.Sprintf("%03dX", r.IntN(1000))
	}
	return fmt.Sprintf("%04d", r.IntN(10_000))
}

// address is a home in the village: a group (组) and house number in a
// village, a building, unit and flat in an urban community.
func address(r *rand.Rand, township, village string) string {
	if strings.HasSuffix(village, "社区") {
		return fmt.Sprintf("%s%s%d号楼%d单元%d号", township, village, 1+r.IntN(30), 1+r.IntN(4), 101+100*r.IntN(18)+r.IntN(4))
	}
	return fmt.Sprintf("%s%s%d组%d号", township, village, 1+r.IntN(12), 1+r.IntN(80))
}

// pickWeighted draws one of items, each as often as its weight in percent
// says; the weights add up to 100.
func pickWeighted[T any](r *rand.Rand, items []T, weight func(T) int) T {
	u := r.IntN(100)
	for _, it := range items {
		if u < weight(it) {
			return it
		}
		u -= weight(it)
	}
	return items[0]
}
