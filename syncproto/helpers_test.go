package syncproto_test

import (
	"fmt"
	"math"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/syncproto"
)

// TestMain runs the package's tests with the local zone of the cities this
// serves (UTC+8), so a time that leaks the process's zone onto the wire shows
// up as "+08:00" instead of hiding behind a UTC container.
func TestMain(m *testing.M) {
	time.Local = syncproto.Beijing
	os.Exit(m.Run())
}

// The unit tree of the tests: one city, two counties, two townships under
// the first county, and villages with one, two and no active cadres.
const (
	cityUnit      = "4110"
	countyUnit    = "411002"
	otherCounty   = "411003"
	townUnit      = "411002001"
	otherTown     = "411002002"
	villageOne    = "411002001001" // exactly one active cadre
	villageTwo    = "411002001002" // two active cadres
	villageNone   = "411002001003" // one cadre, disabled
	otherVillage  = "411002002001" // under otherTown, one active cadre
	missingUnit   = "411002001099" // a well-formed code of no unit
	farVillage    = "411003001001" // under otherCounty
	farTownship   = "411003001"
	warnedAtInput = "2024-05-01T08:00:00Z"
)

// id returns a lowercase canonical UUID made from n.
func id(n int) string { return fmt.Sprintf("0190a3b2-0000-7000-8000-%012d", n) }

var (
	warningID = id(1)

	cadreOne      = id(101) // villageOne's only cadre
	cadreTwoA     = id(102) // villageTwo
	cadreTwoB     = id(103) // villageTwo
	cadreDisabled = id(104) // villageNone, inactive
	cadreOther    = id(105) // otherVillage, under otherTown
	cadreFar      = id(106) // farVillage, under otherCounty
	townshipUser  = id(107) // a user of townUnit: not a village user

	centerUser   = id(201)
	countyUser   = id(202)
	townLead     = id(203)
	otherTownLed = id(204)

	deviceID = id(301)

	warnedAt = mustTime(warnedAtInput)
	// now is when the server received the op under test.
	now = warnedAt.Add(time.Hour)
)

func mustTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t
}

// newDir is the tests' directory.
func newDir() syncproto.MapDirectory {
	d := syncproto.MapDirectory{Units: map[string]syncproto.Unit{}, Users: map[string]syncproto.DirectoryUser{}}
	for code, name := range map[string]string{
		cityUnit:     "许昌市",
		countyUnit:   "魏都区",
		otherCounty:  "建安区",
		townUnit:     "西大街道",
		otherTown:    "东大街道",
		farTownship:  "五女店镇",
		villageOne:   "东风社区",
		villageTwo:   "建设社区",
		villageNone:  "北关社区",
		otherVillage: "南关社区",
		farVillage:   "庞庄村",
	} {
		d.Units[code] = syncproto.Unit{Code: code, Name: name, Level: syncproto.UnitLevel(code)}
	}
	for _, u := range []syncproto.DirectoryUser{
		{ID: cadreOne, Username: "cadre1", Name: "李明", Unit: villageOne, Active: true},
		{ID: cadreTwoA, Username: "cadre2a", Name: "王芳", Unit: villageTwo, Active: true},
		{ID: cadreTwoB, Username: "cadre2b", Name: "赵磊", Unit: villageTwo, Active: true},
		{ID: cadreDisabled, Username: "cadre3", Name: "孙强", Unit: villageNone, Active: false},
		{ID: cadreOther, Username: "cadre4", Name: "周敏", Unit: otherVillage, Active: true},
		{ID: cadreFar, Username: "cadre5", Name: "吴杰", Unit: farVillage, Active: true},
		{ID: townshipUser, Username: "town1", Name: "郑华", Unit: townUnit, Active: true},
	} {
		d.Users[u.ID] = u
	}
	return d
}

// Actors of the tests.
var (
	centerActor    = syncproto.Actor{UserID: centerUser, Role: syncproto.RoleCenter, Unit: cityUnit, DeviceID: deviceID}
	countyActor    = syncproto.Actor{UserID: countyUser, Role: syncproto.RoleCounty, Unit: countyUnit, DeviceID: deviceID}
	townActor      = syncproto.Actor{UserID: townLead, Role: syncproto.RoleTownship, Unit: townUnit, DeviceID: deviceID}
	otherTownActor = syncproto.Actor{UserID: otherTownLed, Role: syncproto.RoleTownship, Unit: otherTown, DeviceID: deviceID}
)

// cadre is the actor of a village user of the test directory.
func cadre(userID string) syncproto.Actor {
	u, ok := newDir().User(userID)
	if !ok {
		panic("no user " + userID)
	}
	return syncproto.Actor{UserID: u.ID, Role: syncproto.RoleVillage, Unit: u.Unit, DeviceID: id(400)}
}

// testEnv is the environment of an op received at now, taking version 42.
func testEnv(a syncproto.Actor) syncproto.Env {
	return syncproto.Env{Actor: a, Version: 42, Now: now, Dir: newDir()}
}

// newWarning is a warning at unit in status, with assignee ("" for none), at
// version 10.
func newWarning(status, unit, assignee string) *syncproto.Warning {
	w := &syncproto.Warning{
		ID:         warningID,
		ExternalID: "GJFZ-20240501-000123",
		Name:       "张秀兰",
		Phone:      "13800138000",
		IDTail:     "302X",
		Address:    "河南省许昌市魏都区西大街道东风社区3号楼2单元501",
		Unit:       unit,
		FraudType:  "刷单返利",
		Risk:       syncproto.RiskHigh,
		WarnedAt:   warnedAt,
		ReceivedAt: warnedAt.Add(time.Minute),
		Deadline:   warnedAt.Add(2 * time.Hour),
		Status:     status,
		Assignee:   assignee,
		Attempts:   []syncproto.Attempt{},
		Reviews:    []syncproto.Review{},
		Flags:      []syncproto.Flag{},
		Version:    10,
	}
	if status != syncproto.WarningNew {
		t := warnedAt.Add(2 * time.Minute)
		w.DispatchedAt = &t
	}
	if assignee != "" {
		t := warnedAt.Add(3 * time.Minute)
		w.AssignedAt = &t
	}
	return w
}

var opCounter int

// newOp is an op on warningID made ten minutes before now on base version 10.
func newOp(typ string, body syncproto.OpBody) *syncproto.Op {
	opCounter++
	return &syncproto.Op{
		ID:          id(10000 + opCounter),
		ClientSeq:   uint64(opCounter),
		Type:        typ,
		WarningID:   warningID,
		BaseVersion: 10,
		At:          now.Add(-10 * time.Minute),
		Body:        body,
	}
}

func dispatchOp(unit string) *syncproto.Op {
	return newOp(syncproto.OpDispatched, syncproto.OpBody{Unit: unit})
}

func assignOp(user string) *syncproto.Op {
	return newOp(syncproto.OpAssigned, syncproto.OpBody{Assignee: user})
}

func recordOp(attemptID, outcome string, reached bool) *syncproto.Op {
	return newOp(syncproto.OpRecorded, syncproto.OpBody{
		AttemptID: attemptID,
		Method:    syncproto.MethodPhone,
		Reached:   &reached,
		Outcome:   outcome,
		Notes:     "电话联系，已讲解刷单诈骗手法",
	})
}

func escalateOp(reason string) *syncproto.Op {
	return newOp(syncproto.OpEscalated, syncproto.OpBody{Reason: reason})
}

func reviewOp(decision string, base uint64) *syncproto.Op {
	op := newOp(syncproto.OpReviewed, syncproto.OpBody{Decision: decision, Comment: "核实无误"})
	op.BaseVersion = base
	return op
}

func boolPtr(b bool) *bool { return &b }

func timePtr(t time.Time) *time.Time { return &t }

// realisticWarning is a warning as a township sees it after some work: three
// attempts (one with a location and a photo), a review, a flag.
func realisticWarning() *syncproto.Warning {
	w := newWarning(syncproto.WarningResolved, villageTwo, cadreTwoA)
	w.FraudType = "冒充客服退款"
	w.Outcome = syncproto.OutcomeDissuaded
	w.Escalated = true
	w.FirstContactAt = timePtr(warnedAt.Add(40 * time.Minute))
	w.ResolvedAt = timePtr(warnedAt.Add(50 * time.Minute))
	w.PastAssignees = []string{cadreTwoB}
	w.MissingPhotos = []string{strings.Repeat("ab", 32)}
	w.Attempts = []syncproto.Attempt{
		{ID: id(501), By: cadreTwoB, DeviceID: id(401), Method: syncproto.MethodPhone, Reached: false,
			Outcome: syncproto.OutcomeUnreachable, Notes: "无人接听", At: warnedAt.Add(10 * time.Minute),
			ReceivedAt: warnedAt.Add(11 * time.Minute), Version: 11},
		{ID: id(502), By: cadreTwoA, DeviceID: id(402), Method: syncproto.MethodVisit, Reached: true,
			Outcome: syncproto.OutcomeRefused, Notes: "本人不配合", At: warnedAt.Add(40 * time.Minute),
			ReceivedAt: warnedAt.Add(45 * time.Minute), Version: 12,
			Location: &syncproto.Location{Lat: 34.0357, Lng: 113.8523, Accuracy: 12.5}},
		{ID: id(503), By: cadreTwoA, DeviceID: id(402), Method: syncproto.MethodVisit, Reached: true,
			Outcome: syncproto.OutcomeDissuaded, Notes: "已劝阻，家属在场", At: warnedAt.Add(50 * time.Minute),
			ReceivedAt: warnedAt.Add(51*time.Minute + 123456789), Version: 13,
			Photos: []string{strings.Repeat("ab", 32)}},
	}
	w.Reviews = []syncproto.Review{
		{By: townLead, Decision: syncproto.DecisionReturn, Comment: "请上门核实", At: warnedAt.Add(20 * time.Minute)},
	}
	w.Flags = []syncproto.Flag{
		{Code: syncproto.FlagStaleAssignee, OpID: id(10501), Detail: "recorded by a former assignee after the warning was reassigned"},
	}
	w.Version = 13
	return w
}

var timeType = reflect.TypeOf(time.Time{})

// assertEqual fails t when got differs from want. Times compare with Equal
// (a decoder may give another *Location for the same instant), floats treat
// NaN as equal to NaN, and nil and empty slices or maps differ.
func assertEqual(tb testing.TB, want, got any) {
	tb.Helper()
	if d := diff("", reflect.ValueOf(want), reflect.ValueOf(got)); d != "" {
		tb.Fatalf("values differ at %s", d)
	}
}

func diff(path string, a, b reflect.Value) string {
	if a.IsValid() != b.IsValid() {
		return fmt.Sprintf("%s: %v != %v", path, a, b)
	}
	if !a.IsValid() {
		return ""
	}
	if a.Type() != b.Type() {
		return fmt.Sprintf("%s: type %s != %s", path, a.Type(), b.Type())
	}
	if a.Type() == timeType {
		ta, tb := a.Interface().(time.Time), b.Interface().(time.Time)
		if !ta.Equal(tb) {
			return fmt.Sprintf("%s: %s != %s", path, ta, tb)
		}
		return ""
	}
	switch a.Kind() {
	case reflect.Pointer, reflect.Interface:
		if a.IsNil() || b.IsNil() {
			if a.IsNil() != b.IsNil() {
				return fmt.Sprintf("%s: nil=%v != nil=%v", path, a.IsNil(), b.IsNil())
			}
			return ""
		}
		return diff(path, a.Elem(), b.Elem())
	case reflect.Struct:
		for i := 0; i < a.NumField(); i++ {
			if d := diff(path+"."+a.Type().Field(i).Name, a.Field(i), b.Field(i)); d != "" {
				return d
			}
		}
		return ""
	case reflect.Slice:
		if a.IsNil() != b.IsNil() {
			return fmt.Sprintf("%s: nil=%v != nil=%v", path, a.IsNil(), b.IsNil())
		}
		if a.Len() != b.Len() {
			return fmt.Sprintf("%s: len %d != %d", path, a.Len(), b.Len())
		}
		for i := 0; i < a.Len(); i++ {
			if d := diff(fmt.Sprintf("%s[%d]", path, i), a.Index(i), b.Index(i)); d != "" {
				return d
			}
		}
		return ""
	case reflect.Map:
		if a.IsNil() != b.IsNil() {
			return fmt.Sprintf("%s: nil=%v != nil=%v", path, a.IsNil(), b.IsNil())
		}
		if a.Len() != b.Len() {
			return fmt.Sprintf("%s: len %d != %d", path, a.Len(), b.Len())
		}
		for _, k := range a.MapKeys() {
			bv := b.MapIndex(k)
			if !bv.IsValid() {
				return fmt.Sprintf("%s[%v]: missing", path, k)
			}
			if d := diff(fmt.Sprintf("%s[%v]", path, k), a.MapIndex(k), bv); d != "" {
				return d
			}
		}
		return ""
	case reflect.Float32, reflect.Float64:
		fa, fb := a.Float(), b.Float()
		if fa != fb && !(math.IsNaN(fa) && math.IsNaN(fb)) {
			return fmt.Sprintf("%s: %v != %v", path, fa, fb)
		}
		return ""
	}
	if !reflect.DeepEqual(a.Interface(), b.Interface()) {
		return fmt.Sprintf("%s: %#v != %#v", path, a.Interface(), b.Interface())
	}
	return ""
}

// requireCode fails t unless err is an *syncproto.Error with code.
func requireCode(tb testing.TB, err error, code string) *syncproto.Error {
	tb.Helper()
	// Apply and Validate return *syncproto.Error: a nil one is no error.
	if err == nil || (reflect.ValueOf(err).Kind() == reflect.Pointer && reflect.ValueOf(err).IsNil()) {
		tb.Fatalf("got no error, want %s", code)
	}
	e := syncproto.AsError(err)
	if e == nil {
		tb.Fatalf("got %T %v, want an *syncproto.Error with code %s", err, err, code)
	}
	if e.Code != code {
		tb.Fatalf("got code %s (%s), want %s", e.Code, e.Message, code)
	}
	if e.Message == "" {
		tb.Fatalf("error %s has no message", code)
	}
	return e
}

// requireField fails t unless err is an invalid_request naming field.
func requireField(tb testing.TB, err error, field string) {
	tb.Helper()
	e := requireCode(tb, err, syncproto.CodeInvalidRequest)
	if got := e.Details["field"]; got != field {
		tb.Fatalf("details.field = %v (%s), want %s", got, e.Message, field)
	}
}
