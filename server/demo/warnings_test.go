package demo_test

import (
	"bytes"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/server/demo"
	"github.com/fieldsync/fieldsync/server/feed"
	"github.com/fieldsync/fieldsync/syncproto"
)

var (
	day            = time.Date(2026, 11, 27, 0, 0, 0, 0, syncproto.Beijing)
	endOfDay       = day.Add(24 * time.Hour)
	externalIDForm = regexp.MustCompile(`^GJFZ-20261127-\d{6}$`)
	phoneForm      = regexp.MustCompile(`^1[3-9]\d{9}$`)
	idTailForm     = regexp.MustCompile(`^\d{3}[\dX]$`)
)

func TestWarnings(t *testing.T) {
	tree := demo.City(1)
	const n = 5000
	ws := demo.Warnings(tree, day, n, 1)
	if len(ws) != n {
		t.Fatalf("got %d warnings, want %d", len(ws), n)
	}
	units := map[string]bool{}
	for _, u := range tree.Units {
		units[u.Code] = true
	}

	ids := map[string]bool{}
	levels := map[string]int{}
	types := map[string]int{}
	risks := map[string]int{}
	daytime, xTails := 0, 0
	for i, w := range ws {
		if err := w.Validate(endOfDay); err != nil {
			t.Fatalf("warning %d does not validate: %v", i, err)
		}
		if ids[w.ExternalID] || !externalIDForm.MatchString(w.ExternalID) {
			t.Fatalf("warning %d: external id %q repeated or malformed", i, w.ExternalID)
		}
		ids[w.ExternalID] = true
		if !phoneForm.MatchString(w.Phone) {
			t.Fatalf("warning %d: phone %q", i, w.Phone)
		}
		if !idTailForm.MatchString(w.IDTail) {
			t.Fatalf("warning %d: id_tail %q", i, w.IDTail)
		}
		if strings.HasSuffix(w.IDTail, "X") {
			xTails++
		}
		if !units[w.Unit] {
			t.Fatalf("warning %d: unit %q is not in the tree", i, w.Unit)
		}
		if !strings.Contains(w.Address, "组") && !strings.Contains(w.Address, "号楼") || !strings.HasSuffix(w.Address, "号") {
			t.Fatalf("warning %d: address %q", i, w.Address)
		}
		if !addressInScope(tree, w) {
			t.Fatalf("warning %d: address %q names no village of unit %s", i, w.Address, w.Unit)
		}
		if w.Deadline != nil {
			t.Fatalf("warning %d has a deadline; the server's policy sets it", i)
		}
		if w.WarnedAt.Before(day) || !w.WarnedAt.Before(endOfDay) {
			t.Fatalf("warning %d: warned_at %v is not on %v", i, w.WarnedAt, day)
		}
		if i > 0 && w.WarnedAt.Before(ws[i-1].WarnedAt) {
			t.Fatalf("warning %d is earlier than the one before", i)
		}
		if h := w.WarnedAt.In(syncproto.Beijing).Hour(); h >= 8 && h < 20 {
			daytime++
		}
		levels[syncproto.UnitLevel(w.Unit)]++
		types[w.FraudType]++
		risks[w.Risk]++
	}

	share := func(k int) float64 { return float64(k) / n }
	if s := share(levels[syncproto.RoleVillage]); s < 0.7 || s > 0.9 {
		t.Errorf("%.2f of warnings addressed to villages, want most", s)
	}
	if levels[syncproto.RoleTownship] == 0 || levels[syncproto.RoleCounty] == 0 {
		t.Errorf("no warnings to dispatch: %v", levels)
	}
	for risk, want := range map[string]float64{"high": 0.2, "medium": 0.5, "low": 0.3} {
		if s := share(risks[risk]); s < want-0.04 || s > want+0.04 {
			t.Errorf("%s risk %.2f, want about %.2f", risk, s, want)
		}
	}
	if s := share(daytime); s < 0.6 {
		t.Errorf("%.2f of warnings between 08:00 and 20:00, want most", s)
	}
	if s := share(xTails); s < 0.05 || s > 0.15 {
		t.Errorf("%.2f of id tails end in X, want about 1/11", s)
	}

	t.Run("FraudTypeMix", func(t *testing.T) {
		known := map[string]bool{}
		for _, ft := range demo.FraudTypes() {
			known[ft.Name] = true
		}
		var names []string
		for name := range types {
			if !known[name] {
				t.Errorf("unknown fraud type %q", name)
			}
			names = append(names, name)
		}
		if len(names) != len(known) {
			t.Errorf("%d fraud types drawn, want all %d", len(names), len(known))
		}
		sort.Slice(names, func(i, j int) bool { return types[names[i]] > types[names[j]] })
		if names[0] != "刷单返利" && names[1] != "刷单返利" {
			t.Errorf("刷单返利 not among the top two: %v", names[:2])
		}
		if types["虚假投资理财"] < types["婚恋交友"] {
			t.Errorf("mix: %v", types)
		}
	})
}

// addressInScope reports whether w's address names a village inside w's
// unit, as the platform would address it.
func addressInScope(tree *demo.Tree, w syncproto.FeedWarning) bool {
	for _, v := range tree.Villages() {
		if syncproto.InScope(w.Unit, v) && strings.Contains(w.Address, tree.Name(syncproto.ParentCode(v))+tree.Name(v)) {
			return true
		}
	}
	return false
}

func TestWarnings_Deterministic(t *testing.T) {
	tree := demo.City(1)
	a := demo.Warnings(tree, day, 300, 5)
	if b := demo.Warnings(tree, day, 300, 5); !reflect.DeepEqual(a, b) {
		t.Fatal("same seed, different feed")
	}
	if b := demo.Warnings(tree, day, 300, 6); reflect.DeepEqual(a, b) {
		t.Fatal("different seeds, same feed")
	}
}

func TestWarnings_DaySoFar(t *testing.T) {
	tree := demo.City(1)
	now := day.Add(10*time.Hour + 17*time.Minute)
	ws := demo.Warnings(tree, now, 500, 1)
	for i, w := range ws {
		if err := w.Validate(now); err != nil {
			t.Fatalf("warning %d does not validate at %v: %v", i, now, err)
		}
		if w.WarnedAt.Before(day) || w.WarnedAt.After(now) {
			t.Fatalf("warning %d: warned_at %v outside %v to %v", i, w.WarnedAt, day, now)
		}
	}
	// A UTC time late in the evening is already the next day in Beijing.
	late := time.Date(2026, 11, 27, 20, 0, 0, 0, time.UTC)
	if id := demo.Warnings(tree, late, 1, 1)[0].ExternalID; !strings.HasPrefix(id, "GJFZ-20261128-") {
		t.Fatalf("external id %q, want the Beijing date 2026-11-28", id)
	}
}

func TestWarnings_Empty(t *testing.T) {
	if ws := demo.Warnings(demo.City(1), day, 0, 1); ws != nil {
		t.Fatalf("n=0: %d warnings", len(ws))
	}
	if ws := demo.Warnings(&demo.Tree{}, day, 10, 1); ws != nil {
		t.Fatalf("no villages: %d warnings", len(ws))
	}
}

func BenchmarkWarnings(b *testing.B) {
	tree := demo.City(1)
	for b.Loop() {
		demo.Warnings(tree, day, 1000, 1)
	}
}

// TestWarnings_FeedCSV checks that a demo feed survives the CSV form the
// center may upload.
func TestWarnings_FeedCSV(t *testing.T) {
	ws := demo.Warnings(demo.City(1), day, 200, 1)
	var buf bytes.Buffer
	if err := feed.WriteCSV(&buf, ws); err != nil {
		t.Fatal(err)
	}
	rows, err := feed.ParseCSV(&buf, endOfDay)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != len(ws) {
		t.Fatalf("got %d rows, want %d", len(rows), len(ws))
	}
	for i, row := range rows {
		if row.Err != nil {
			t.Fatalf("row %d: %v", row.Num, row.Err)
		}
		got, want := row.Warning, ws[i]
		if !got.WarnedAt.Equal(want.WarnedAt) {
			t.Fatalf("row %d: warned_at %v, want %v", row.Num, got.WarnedAt, want.WarnedAt)
		}
		got.WarnedAt, want.WarnedAt = time.Time{}, time.Time{}
		if got != want {
			t.Fatalf("row %d: %+v, want %+v", row.Num, got, want)
		}
	}
}
