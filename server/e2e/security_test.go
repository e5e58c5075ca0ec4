package e2e_test

import (
	"context"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/fieldsync/fieldsync/internal/fakeclock"
	"github.com/fieldsync/fieldsync/server/feed"
	"github.com/fieldsync/fieldsync/server/servertest"
	"github.com/fieldsync/fieldsync/syncproto"
)

// roles are the callers of the endpoint table: no token at all, then each
// fixture user, then the root admin (a center user with admin: true).
var roles = []string{"anon", "center1", "county1", "leadA", "leadB", "a1", "a2x", "b1", "admin"}

func roleDevice(c *city, role string) *servertest.Device {
	switch role {
	case "anon":
		return nil
	case "admin":
		return c.admin
	}
	return c.dev[role]
}

func roleToken(c *city, role string) string {
	if d := roleDevice(c, role); d != nil {
		return d.Token()
	}
	return ""
}

func roleDeviceID(c *city, role string) string {
	if d := roleDevice(c, role); d != nil {
		return d.ID
	}
	return uuid.NewString()
}

// codeForStatus is the code every error answer of the table must carry.
var codeForStatus = map[int]string{
	http.StatusUnauthorized: syncproto.CodeUnauthorized,
	http.StatusForbidden:    syncproto.CodeForbidden,
	http.StatusNotFound:     syncproto.CodeNotFound,
}

// securityCity is the small city the TestSecurity_* tests attack: four
// warnings (WA1 in village A1, assigned to a1 with a photo of its visit;
// WA2 in village A2, waiting; WT in township A; WB1 in village B1,
// assigned to b1) and a spare device of a2y for the revoke rows. Each test
// gets its own, so none depends on what another did.
type securityCity struct {
	ctx                      context.Context
	clock                    *fakeclock.Offset
	c                        *city
	srv                      *servertest.Server
	center, leadA, leadB     *servertest.Device
	a1, a2x, a2y, b1, victim *servertest.Device
	warned                   time.Time
	ids                      map[string]string
	townA                    map[string]bool
	photo, tablePhoto        []byte
	photoSum, tableSum       string
}

func newSecurityCity(t *testing.T) *securityCity {
	t.Helper()
	ctx := context.Background()
	clock := &fakeclock.Offset{}
	c := newCity(t, syncproto.Msgpack, clock.Now)
	f := &securityCity{ctx: ctx, clock: clock, c: c, srv: c.srv,
		center: c.dev["center1"], leadA: c.dev["leadA"], leadB: c.dev["leadB"],
		a1: c.dev["a1"], a2x: c.dev["a2x"], a2y: c.dev["a2y"], b1: c.dev["b1"],
		warned: time.Now().Add(-time.Hour).UTC().Truncate(time.Second)}
	feedResp, err := f.center.ImportFeed(ctx, []syncproto.FeedWarning{
		servertest.FeedRow("WA1", unitVillA1, syncproto.RiskHigh, f.warned),
		servertest.FeedRow("WA2", unitVillA2, syncproto.RiskMedium, f.warned),
		servertest.FeedRow("WT", unitTownA, syncproto.RiskLow, f.warned),
		servertest.FeedRow("WB1", unitVillB1, syncproto.RiskHigh, f.warned),
	})
	if err != nil || len(feedResp.Created) != 4 {
		t.Fatalf("import: %+v %v", feedResp, err)
	}
	f.ids = map[string]string{}
	for _, cr := range feedResp.Created {
		f.ids[cr.ExternalID] = cr.ID
	}
	f.townA = map[string]bool{f.ids["WA1"]: true, f.ids["WA2"]: true, f.ids["WT"]: true}

	// a1 photographs the visit to WA1.
	f.photo, f.photoSum = servertest.PNG("a1 visit to WA1")
	if _, err := f.a1.PutBlob(ctx, f.photoSum, "image/png", f.photo); err != nil {
		t.Fatalf("put photo: %v", err)
	}
	withPhoto := recordBody(syncproto.OutcomeRefused, true)
	withPhoto.Photos = []string{f.photoSum}
	mustApplied(t, push(t, f.a1, op(f.a1, syncproto.OpRecorded, f.ids["WA1"], 0, withPhoto)).Results[0])

	f.victim = f.srv.Login(t, "a2y", testPassword)
	f.tablePhoto, f.tableSum = servertest.PNG("uploaded by every role")
	return f
}

// TestSecurity_EndpointsByRole: every endpoint answers each role as its
// rights say: no token 401, out of role 403, and the rows that succeed
// change only what they may.
func TestSecurity_EndpointsByRole(t *testing.T) {
	f := newSecurityCity(t)
	ctx, c, srv, center, a1, warned, ids, photo, photoSum, victim, tablePhoto, tableSum := f.ctx, f.c, f.srv, f.center, f.a1, f.warned, f.ids, f.photo, f.photoSum, f.victim, f.tablePhoto, f.tableSum
	type endpoint struct {
		name string
		// req builds the request of role (body encoded with codec).
		req func(t *testing.T, codec syncproto.Codec, role string) rawReq
		// want is the status per role; authed roles missing from it get def.
		want map[string]int
		def  int
		// check looks further at a 200.
		check func(t *testing.T, role string, r rawResp)
		// ownDevice runs the request on a device signed in for it:
		// it ends the session of its device, which the other rows
		// still use.
		ownDevice bool
	}
	body := func(t *testing.T, codec syncproto.Codec, path string, v any) rawReq {
		return rawReq{Path: path, ContentType: codec.MediaType(), Body: mustEncode(t, codec, v)}
	}
	otherDevice := func(role string) string {
		if role == "center1" {
			return a1.ID
		}
		return center.ID
	}
	adminOnly := map[string]int{"admin": 200}
	endpoints := []endpoint{
		{
			name: "FeedImport",
			req: func(t *testing.T, codec syncproto.Codec, role string) rawReq {
				row := servertest.FeedRow("T-"+codec.MediaType()+"-"+role, unitTownB, syncproto.RiskLow, warned)
				return body(t, codec, "/v1/feed/warnings", syncproto.FeedRequest{Warnings: []syncproto.FeedWarning{row}})
			},
			want: map[string]int{"center1": 200, "admin": 200}, def: 403,
		},
		{
			name: "AdminUnits",
			req: func(t *testing.T, codec syncproto.Codec, role string) rawReq {
				return body(t, codec, "/v1/admin/units", syncproto.UnitsRequest{Units: []syncproto.UnitInput{{Code: unitTownA + "009", Name: "新村"}}})
			},
			want: adminOnly, def: 403,
		},
		{
			name: "AdminUsers",
			req: func(t *testing.T, codec syncproto.Codec, role string) rawReq {
				inactive := false
				return body(t, codec, "/v1/admin/users", syncproto.UsersRequest{Users: []syncproto.UserInput{{
					Username: "table-user", Password: testPassword, Name: "表用户", Unit: unitTownA + "009", Active: &inactive,
				}}})
			},
			want: adminOnly, def: 403,
		},
		{
			name: "AdminRevoke",
			req: func(t *testing.T, codec syncproto.Codec, role string) rawReq {
				return body(t, codec, "/v1/admin/devices/"+victim.ID+"/revoke", syncproto.RevokeRequest{})
			},
			want: adminOnly, def: 403,
			check: func(t *testing.T, role string, r rawResp) {
				var rr syncproto.RevokeResponse
				r.decode(t, &rr)
				if !rr.Revoked || rr.DeviceID != victim.ID {
					t.Fatalf("revoke answer %+v", rr)
				}
			},
		},
		{
			name: "PushAsAnotherDevice",
			req: func(t *testing.T, codec syncproto.Codec, role string) rawReq {
				o := syncproto.Op{ID: uuid.NewString(), ClientSeq: 1, Type: syncproto.OpEscalated, WarningID: ids["WA1"], At: time.Now().UTC(), Body: syncproto.OpBody{Reason: "not mine"}}
				return body(t, codec, "/v1/sync/push", syncproto.PushRequest{DeviceID: otherDevice(role), Ops: []syncproto.Op{o}})
			},
			def: 403,
		},
		{
			name: "PullAsAnotherDevice",
			req: func(t *testing.T, codec syncproto.Codec, role string) rawReq {
				return body(t, codec, "/v1/sync/pull", syncproto.PullRequest{DeviceID: otherDevice(role)})
			},
			def: 403,
		},
		{
			name: "PullOwnDevice",
			req: func(t *testing.T, codec syncproto.Codec, role string) rawReq {
				return body(t, codec, "/v1/sync/pull", syncproto.PullRequest{DeviceID: roleDeviceID(c, role)})
			},
			def: 200,
		},
		{
			name: "GetPhotoOfTownshipA",
			req: func(t *testing.T, codec syncproto.Codec, role string) rawReq {
				return rawReq{Method: http.MethodGet, Path: "/v1/blobs/" + photoSum, Accept: codec.MediaType()}
			},
			want: map[string]int{"a1": 200, "leadA": 200, "county1": 200, "center1": 200, "admin": 200},
			def:  404,
			check: func(t *testing.T, role string, r rawResp) {
				if string(r.Body) != string(photo) || r.Header.Get("Content-Type") != "image/png" {
					t.Fatalf("photo: %q (%s)", clip(r.Body), r.Header.Get("Content-Type"))
				}
			},
		},
		{
			name: "GetUnknownPhoto",
			req: func(t *testing.T, codec syncproto.Codec, role string) rawReq {
				_, sum := servertest.PNG("never uploaded")
				return rawReq{Method: http.MethodGet, Path: "/v1/blobs/" + sum, Accept: codec.MediaType()}
			},
			def: 404,
		},
		{
			name: "PutPhoto",
			req: func(t *testing.T, codec syncproto.Codec, role string) rawReq {
				return rawReq{Method: http.MethodPut, Path: "/v1/blobs/" + tableSum, ContentType: "image/png", Accept: codec.MediaType(), Body: tablePhoto}
			},
			def: 200,
		},
		{
			name: "Logout",
			req: func(t *testing.T, codec syncproto.Codec, role string) rawReq {
				return body(t, codec, "/v1/auth/logout", struct{}{})
			},
			def:       200,
			ownDevice: true,
		},
	}
	for _, codec := range []syncproto.Codec{syncproto.JSON, syncproto.Msgpack} {
		t.Run(codec.MediaType(), func(t *testing.T) {
			for _, ep := range endpoints {
				t.Run(ep.name, func(t *testing.T) {
					for _, role := range roles {
						t.Run(role, func(t *testing.T) {
							want := ep.def
							if s, ok := ep.want[role]; ok {
								want = s
							}
							if role == "anon" {
								want = 401
							}
							req := ep.req(t, codec, role)
							req.Token = roleToken(c, role)
							if ep.ownDevice && role != "anon" {
								password := testPassword
								if role == "admin" {
									password = servertest.AdminPassword
								}
								req.Token = srv.Login(t, role, password).Token()
							}
							r := send(t, srv.URL, req)
							if want != 200 {
								wantError(t, r, want, codeForStatus[want])
								return
							}
							if r.Status != 200 {
								t.Fatalf("status %d, want 200: %q", r.Status, clip(r.plainBody(t)))
							}
							if r.Header.Get(syncproto.HeaderProtocol) != syncproto.ProtocolVersion {
								t.Errorf("no protocol header")
							}
							if ep.check != nil {
								ep.check(t, role, r)
							}
						})
					}
				})
			}
		})
	}
	// The revoked spare device is refused from now on.
	_, err := victim.Pull(ctx, syncproto.PullRequest{DeviceID: victim.ID})
	if errCode(err) != syncproto.CodeDeviceRevoked {
		t.Fatalf("revoked device pulls: %v", err)
	}
}

// TestSecurity_ReadScope: nobody reads a warning, photo, unit or user outside their scope.
func TestSecurity_ReadScope(t *testing.T) {
	f := newSecurityCity(t)
	ctx, c, leadA, leadB, a1, a2x, a2y, b1, ids, townA := f.ctx, f.c, f.leadA, f.leadB, f.a1, f.a2x, f.a2y, f.b1, f.ids, f.townA
	aUsers := map[string]bool{c.userIDs["leadA"]: true, c.userIDs["a1"]: true, c.userIDs["a2x"]: true, c.userIDs["a2y"]: true}
	got, _ := pullAll(t, leadB, "", 0)
	if !warningIDs(got)[ids["WB1"]] {
		t.Fatalf("leadB does not hold its own WB1")
	}
	for key, ch := range got {
		switch ch.Entity {
		case syncproto.EntityWarning:
			w := ch.Data.(*syncproto.Warning)
			if townA[ch.ID] || strings.HasPrefix(w.Unit, unitTownA) {
				t.Fatalf("leadB pulled township A's warning %s (unit %s)", ch.ID, w.Unit)
			}
		case syncproto.EntityUnit:
			if strings.HasPrefix(ch.ID, unitTownA) || !strings.HasPrefix(ch.ID, unitTownB) {
				t.Fatalf("leadB pulled unit %s", ch.ID)
			}
		case syncproto.EntityUser:
			u := ch.Data.(*syncproto.DirectoryUser)
			if aUsers[ch.ID] || !strings.HasPrefix(u.Unit, unitTownB) {
				t.Fatalf("leadB pulled user %s of unit %s", key, u.Unit)
			}
		}
	}
	// A lead sees nothing of the other township either.
	if got, _ := pullAll(t, leadA, "", 0); warningIDs(got)[ids["WB1"]] {
		t.Fatalf("leadA pulled township B's WB1")
	}
	// A village cadre gets the warnings assigned to it and nothing else.
	for _, d := range []struct {
		name string
		dev  *servertest.Device
	}{{"a1", a1}, {"a2x", a2x}, {"a2y", a2y}, {"b1", b1}} {
		got, _ := pullAll(t, d.dev, "", 0)
		for _, ch := range got {
			if ch.Entity != syncproto.EntityWarning {
				t.Fatalf("%s pulled a %s: %s", d.name, ch.Entity, ch.ID)
			}
			if w := ch.Data.(*syncproto.Warning); w.Assignee != c.userIDs[d.name] {
				t.Fatalf("%s pulled %s, assigned to %q", d.name, ch.ID, w.Assignee)
			}
		}
	}

	// WA2 goes to a2y, who photographs the visit, then to a2x, then back
	// to a2y: a2x is then a former assignee who is not the uploader.
	assign := func(to string) {
		t.Helper()
		mustApplied(t, push(t, leadA, op(leadA, syncproto.OpAssigned, ids["WA2"], 0, syncproto.OpBody{Assignee: c.userIDs[to]})).Results[0])
	}
	assign("a2y")
	visit, visitSum := servertest.PNG("a2y visit to WA2")
	if _, err := a2y.PutBlob(ctx, visitSum, "image/png", visit); err != nil {
		t.Fatal(err)
	}
	b := recordBody(syncproto.OutcomeUnreachable, false)
	b.Photos = []string{visitSum}
	mustApplied(t, push(t, a2y, op(a2y, syncproto.OpRecorded, ids["WA2"], 0, b)).Results[0])
	if _, err := a2x.GetBlob(ctx, visitSum); errCode(err) != syncproto.CodeNotFound {
		t.Fatalf("a2x, never assignee, reads the photo: %v", err)
	}
	assign("a2x")
	got, xBefore := pullAll(t, a2x, "", 0)
	if w := warningOf(t, got, ids["WA2"]); w.Assignee != c.userIDs["a2x"] || len(w.Attempts) != 1 {
		t.Fatalf("a2x's WA2: %+v", w)
	}
	assign("a2y")
	page, err := a2x.Pull(ctx, syncproto.PullRequest{DeviceID: a2x.ID, Cursor: xBefore.Cursor})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Changes) != 1 || page.Changes[0].Kind != syncproto.ChangeRemove || page.Changes[0].ID != ids["WA2"] || page.Changes[0].Data != nil {
		t.Fatalf("old assignee got %+v, want one bare remove of WA2", page.Changes)
	}
	if got, _ := pullAll(t, a2x, "", 0); len(got) != 0 {
		t.Fatalf("old assignee's fresh pull holds %v", got)
	}
	if got, _ := pullAll(t, a2y, "", 0); !warningIDs(got)[ids["WA2"]] {
		t.Fatalf("new assignee lacks WA2")
	}
	// The photo: its author and the lead see it; the former assignee no
	// longer holds the warning and does not (a village user's scope is
	// what is assigned to them now, PROTOCOL.md section 5), nor does
	// another township's people.
	for name, want := range map[string]string{"a2x": syncproto.CodeNotFound, "a2y": "", "leadA": "", "b1": syncproto.CodeNotFound, "leadB": syncproto.CodeNotFound, "a1": syncproto.CodeNotFound} {
		if _, err := c.dev[name].GetBlob(ctx, visitSum); (want == "" && err != nil) || (want != "" && errCode(err) != want) {
			t.Fatalf("%s reads a2y's photo: %v, want %q", name, err, want)
		}
	}
}

// TestSecurity_WriteScope: nobody changes a warning outside their scope.
func TestSecurity_WriteScope(t *testing.T) {
	f := newSecurityCity(t)
	c, leadA, leadB, a1, a2x, b1, ids := f.c, f.leadA, f.leadB, f.a1, f.a2x, f.b1, f.ids
	versions := func() map[string]*syncproto.Warning {
		t.Helper()
		out := map[string]*syncproto.Warning{}
		for _, d := range []*servertest.Device{leadA, leadB} {
			got, _ := pullAll(t, d, "", 0)
			for id := range warningIDs(got) {
				out[id] = warningOf(t, got, id)
			}
		}
		return out
	}
	before := versions()
	reached := true
	bodies := func(unit, assignee string) map[string]syncproto.OpBody {
		return map[string]syncproto.OpBody{
			syncproto.OpDispatched:            {Unit: unit},
			syncproto.OpAssigned:              {Assignee: assignee},
			syncproto.OpRecorded:              {AttemptID: uuid.NewString(), Method: syncproto.MethodPhone, Reached: &reached, Outcome: syncproto.OutcomeDissuaded, Notes: "越权"},
			syncproto.OpEscalated:             {Reason: "越权"},
			syncproto.OpReviewed + "/approve": {Decision: syncproto.DecisionApprove},
			syncproto.OpReviewed + "/return":  {Decision: syncproto.DecisionReturn, Comment: "越权"},
		}
	}
	type attempt struct {
		who     *servertest.Device
		name    string
		warning string
		bodies  map[string]syncproto.OpBody
	}
	attempts := []attempt{
		// Another township's lead, with units and users of its own scope.
		{leadB, "leadB", "WA1", bodies(unitVillB1, c.userIDs["b1"])},
		{leadB, "leadB", "WA2", bodies(unitVillB1, c.userIDs["b1"])},
		{leadB, "leadB", "WT", bodies(unitTownB, c.userIDs["b1"])},
		// A cadre of another township.
		{b1, "b1", "WA1", bodies(unitVillB1, c.userIDs["b1"])},
		// A cadre of the same township, another village, never assignee.
		{a2x, "a2x", "WA1", bodies(unitVillA2, c.userIDs["a2x"])},
		// A township A cadre on township B's warning.
		{a1, "a1", "WB1", bodies(unitVillA1, c.userIDs["a1"])},
		// leadA on township B's warning.
		{leadA, "leadA", "WB1", bodies(unitVillA1, c.userIDs["a1"])},
	}
	for _, at := range attempts {
		var ops []syncproto.Op
		var names []string
		for key, b := range at.bodies {
			typ, _, _ := strings.Cut(key, "/")
			ops = append(ops, op(at.who, typ, ids[at.warning], 0, b))
			names = append(names, key)
		}
		resp := push(t, at.who, ops...)
		for i, r := range resp.Results {
			if r.Status != syncproto.StatusRejected || r.Code != syncproto.CodeForbidden {
				t.Errorf("%s %s on %s: %s/%s %s, want rejected forbidden", at.name, names[i], at.warning, r.Status, r.Code, r.Message)
			}
		}
		// Rejected ops still consume their client_seq.
		if last := ops[len(ops)-1].ClientSeq; resp.LastClientSeq != last {
			t.Errorf("%s: last_client_seq %d after rejected ops up to %d", at.name, resp.LastClientSeq, last)
		}
	}
	// In scope, but moving the warning out of it.
	resp := push(t, leadA,
		op(leadA, syncproto.OpDispatched, ids["WT"], 0, syncproto.OpBody{Unit: unitVillB1}),
		op(leadA, syncproto.OpAssigned, ids["WT"], 0, syncproto.OpBody{Assignee: c.userIDs["b1"]}),
		op(leadA, syncproto.OpDispatched, ids["WT"], 0, syncproto.OpBody{Unit: unitCounty}),
		op(leadA, syncproto.OpEscalated, uuid.NewString(), 0, syncproto.OpBody{Reason: "no such warning"}),
	)
	for i, r := range resp.Results {
		if r.Status != syncproto.StatusRejected || r.Code != syncproto.CodeForbidden {
			t.Errorf("leadA moving WT out of scope (%d): %s/%s %s", i, r.Status, r.Code, r.Message)
		}
	}
	after := versions()
	for _, name := range []string{"WA1", "WA2", "WT", "WB1"} {
		b, a := before[ids[name]], after[ids[name]]
		if b == nil || a == nil {
			t.Fatalf("%s missing from the leads' pulls", name)
		}
		if a.Version != b.Version || a.Unit != b.Unit || a.Assignee != b.Assignee || len(a.Attempts) != len(b.Attempts) || a.Escalated != b.Escalated || len(a.Reviews) != len(b.Reviews) || a.Status != b.Status {
			t.Errorf("%s changed by refused ops: before %+v, after %+v", name, b, a)
		}
	}
}

// TestSecurity_AdminScope: an admin below the city administers only its own subtree.
func TestSecurity_AdminScope(t *testing.T) {
	f := newSecurityCity(t)
	ctx, c, srv, center, leadB, b1, warned, victim := f.ctx, f.c, f.srv, f.center, f.leadB, f.b1, f.warned, f.victim
	inactive := false
	if _, err := c.admin.UpsertUsers(ctx, []syncproto.UserInput{
		{Username: "tadmin", Password: testPassword, Name: "镇管理员", Unit: unitTownA, Admin: new(true)},
		{Username: "victimB", Password: testPassword, Name: "乙镇干部", Unit: unitTownB},
	}); err != nil {
		t.Fatalf("root admin creates a township admin: %v", err)
	}
	tadmin := srv.Login(t, "tadmin", testPassword)
	if !tadmin.Login.User.Admin || tadmin.Login.User.Role != syncproto.RoleTownship {
		t.Fatalf("tadmin = %+v", tadmin.Login.User)
	}
	refused := func(t *testing.T, what string, err error) {
		t.Helper()
		if err == nil {
			t.Errorf("township admin %s: succeeded, want 403 or 404", what)
			return
		}
		if code := errCode(err); code != syncproto.CodeForbidden && code != syncproto.CodeNotFound {
			t.Errorf("township admin %s: %v, want forbidden or not_found", what, err)
		}
	}
	// Both of these were real holes when this test was written (fixed
	// since); the messages say where to look if they come back.
	const unitsBug = "BUG in server/store/directory.go (*Store).UpsertUnits: an admin may upsert (rename) an ANCESTOR of its own unit; " +
		"the scope check must be `!syncproto.InScope(actor.Unit, u.Code)` alone, every unit in the admin's scope"
	const usersBug = "BUG in server/store/directory.go (*Store).UpsertUsers: only the NEW unit is checked against the admin's scope, " +
		"so an existing user of another scope (any username, even the root admin) is moved into the admin's township with a password " +
		"the admin chose; the user's current unit must be in scope too"

	t.Run("Units", func(t *testing.T) {
		for _, tc := range []struct {
			name  string
			units []syncproto.UnitInput
			bug   string
		}{
			{"VillageOfTownshipB", []syncproto.UnitInput{{Code: unitTownB + "009", Name: "外村"}}, ""},
			{"AnotherCounty", []syncproto.UnitInput{{Code: "411003", Name: "外县"}}, ""},
			{"RenameTownshipB", []syncproto.UnitInput{{Code: unitTownB, Name: "被改名的镇"}}, ""},
			{"MixedBatch", []syncproto.UnitInput{{Code: unitTownA + "007", Name: "本镇新村"}, {Code: unitTownB + "007", Name: "外村"}}, ""},
			{"RenameOwnCounty", []syncproto.UnitInput{{Code: unitCounty, Name: "被改名的区"}}, unitsBug},
			{"RenameCity", []syncproto.UnitInput{{Code: unitCity, Name: "被改名的市"}}, unitsBug},
		} {
			t.Run(tc.name, func(t *testing.T) {
				// A unit that does not exist reads as the zero Unit.
				unitNow := func(code string) syncproto.Unit {
					if u := srv.Unit(t, code); u != nil {
						return *u
					}
					return syncproto.Unit{}
				}
				before := map[string]syncproto.Unit{}
				for _, u := range tc.units {
					before[u.Code] = unitNow(u.Code)
				}
				_, err := tadmin.UpsertUnits(ctx, tc.units)
				if err == nil && tc.bug != "" {
					t.Errorf("%s\n(a township admin of %s just renamed %s)", tc.bug, unitTownA, tc.units[0].Code)
				} else {
					refused(t, "upserts units "+fmt.Sprint(tc.units), err)
				}
				for _, u := range tc.units {
					if after := unitNow(u.Code); err != nil && after != before[u.Code] {
						t.Errorf("unit %s changed by a refused upsert: %+v -> %+v", u.Code, before[u.Code], after)
					}
				}
			})
		}
		// Inside its township it may.
		if _, err := tadmin.UpsertUnits(ctx, []syncproto.UnitInput{{Code: unitTownA + "008", Name: "本镇新村"}}); err != nil {
			t.Fatalf("township admin in its township: %v", err)
		}
	})

	t.Run("Users", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			user syncproto.UserInput
			bug  string
		}{
			{"NewUserInTownshipB", syncproto.UserInput{Username: "outsider", Password: testPassword, Name: "外人", Unit: unitVillB1, Active: &inactive}, ""},
			{"NewCityAdmin", syncproto.UserInput{Username: "cityboss", Password: testPassword, Name: "市管理员", Unit: unitCity, Admin: new(true)}, ""},
			{"PromoteItself", syncproto.UserInput{Username: "tadmin", Name: "镇管理员", Unit: unitCity, Admin: new(true)}, ""},
			// victimB lives in township B: taking the account over by its
			// username (moving it in, setting a password) is a write
			// outside the admin's township.
			{"TakeOverUserOfTownshipB", syncproto.UserInput{Username: "victimB", Password: "taken-over-pass-1", Name: "乙镇干部", Unit: unitTownA}, usersBug},
		} {
			t.Run(tc.name, func(t *testing.T) {
				before := srv.User(t, tc.user.Username)
				existed := before != nil
				_, err := tadmin.UpsertUsers(ctx, []syncproto.UserInput{tc.user})
				if err == nil && tc.bug != "" {
					t.Errorf("%s\n(a township admin of %s just moved %s out of %s and reset its password)", tc.bug, unitTownA, tc.user.Username, before.Unit)
				} else {
					refused(t, "upserts user "+tc.user.Username, err)
				}
				after := srv.User(t, tc.user.Username)
				exists := after != nil
				switch {
				case err == nil:
					// Reported above.
				case !existed && exists:
					t.Errorf("user %s created by a refused upsert", tc.user.Username)
				case existed && (after.Unit != before.Unit || after.PasswordHash != before.PasswordHash || after.Admin != before.Admin || after.Active != before.Active):
					t.Errorf("user %s changed by a refused upsert: unit %s -> %s, admin %v -> %v, password changed %v",
						tc.user.Username, before.Unit, after.Unit, before.Admin, after.Admin, after.PasswordHash != before.PasswordHash)
				}
			})
		}
		// In its township it may.
		if _, err := tadmin.UpsertUsers(ctx, []syncproto.UserInput{{Username: "a2z", Password: testPassword, Name: "新村干", Unit: unitTownA + "008"}}); err != nil {
			t.Fatalf("township admin creates a user in its township: %v", err)
		}
	})

	t.Run("Revoke", func(t *testing.T) {
		for _, d := range []*servertest.Device{leadB, b1, center, c.admin} {
			_, err := tadmin.RevokeDevice(ctx, d.ID, true)
			refused(t, "revokes a device of "+d.Login.User.Username, err)
		}
		_, err := tadmin.RevokeDevice(ctx, uuid.NewString(), false)
		if errCode(err) != syncproto.CodeNotFound {
			t.Errorf("unknown device: %v", err)
		}
		for _, d := range []*servertest.Device{leadB, b1, center} {
			if _, err := d.Pull(ctx, syncproto.PullRequest{DeviceID: d.ID}); err != nil {
				t.Fatalf("%s after a refused revoke: %v", d.Login.User.Username, err)
			}
		}
		// A device of its own township it may revoke.
		if _, err := tadmin.RevokeDevice(ctx, victim.ID, false); err != nil {
			t.Fatalf("township admin revokes a2y's device: %v", err)
		}
	})

	t.Run("FeedAndPull", func(t *testing.T) {
		resp, err := tadmin.ImportFeed(ctx, []syncproto.FeedWarning{servertest.FeedRow("TB-1", unitVillB1, syncproto.RiskLow, warned)})
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.Created) != 0 || len(resp.Invalid) != 1 || resp.Invalid[0].Code != syncproto.CodeForbidden {
			t.Fatalf("township admin imports into township B: %+v", resp)
		}
		got, _ := pullAll(t, tadmin, "", 0)
		for id := range warningIDs(got) {
			if w := warningOf(t, got, id); !strings.HasPrefix(w.Unit, unitTownA) {
				t.Fatalf("township admin pulled %s of unit %s", id, w.Unit)
			}
		}
	})
}

// TestSecurity_JWT: forged, stale, revoked or borrowed credentials get 401 or 403.
func TestSecurity_JWT(t *testing.T) {
	f := newSecurityCity(t)
	ctx, clock, c, srv, leadA, leadB, a1, ids := f.ctx, f.clock, f.c, f.srv, f.leadA, f.leadB, f.a1, f.ids
	kid, key := serverKey(t, srv)
	good := a1.Token()
	header, claims, sig := jwtParts(t, good)
	if header["alg"] != "EdDSA" || header["kid"] != kid {
		t.Fatalf("token header %v, want EdDSA with kid %s", header, kid)
	}
	for _, name := range []string{"sub", "role", "unit", "dev", "iat", "exp", "jti"} {
		if _, ok := claims[name]; !ok {
			t.Errorf("token lacks claim %s: %v", name, claims)
		}
	}
	pubKey := key.Public().(ed25519.PublicKey)
	rawHeader, _ := b64.DecodeString(strings.Split(good, ".")[0])
	hs256 := func(secret []byte) string {
		h := map[string]any{"alg": "HS256", "typ": "JWT", "kid": kid}
		in := jwtSigningInput(t, h, claims)
		m := hmac.New(sha256.New, secret)
		m.Write([]byte(in))
		return in + "." + b64.EncodeToString(m.Sum(nil))
	}
	with := func(k string, v any) claimSet {
		m := claimSet(copyMap(claims))
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
		return m
	}
	_, foreign, _ := ed25519.GenerateKey(rand.Reader)
	now := clock.Now()
	edHeader := map[string]any{"alg": "EdDSA", "typ": "JWT", "kid": kid}
	tamperedUnit := strings.Split(jwtSigningInput(t, header, with("unit", unitCity)), ".")[1]
	tamperedRole := strings.Split(jwtSigningInput(t, header, with("role", syncproto.RoleCenter)), ".")[1]
	hdr := strings.Split(good, ".")[0]
	cases := []struct {
		name, token, code string
		auth              string // a whole Authorization header, instead of Bearer token
	}{
		{name: "AlgNone", token: jwtSigningInput(t, map[string]any{"alg": "none", "typ": "JWT", "kid": kid}, claims) + "."},
		{name: "AlgNoneKeepSig", token: jwtSigningInput(t, map[string]any{"alg": "none", "typ": "JWT", "kid": kid}, claims) + "." + sig},
		{name: "AlgNoneUpper", token: jwtSigningInput(t, map[string]any{"alg": "NONE", "kid": kid}, claims) + "."},
		{name: "HS256AnySecret", token: hs256([]byte("secret"))},
		{name: "HS256HeaderAsSecret", token: hs256(rawHeader)},
		{name: "HS256EncodedHeaderAsSecret", token: hs256([]byte(hdr))},
		{name: "HS256PublicKeyAsSecret", token: hs256(pubKey)},
		{name: "HS256PublicKeyHexAsSecret", token: hs256([]byte(hex.EncodeToString(pubKey)))},
		{name: "EdDSAForeignKey", token: signEdDSA(t, foreign, edHeader, claims)},
		{name: "NoExp", token: signEdDSA(t, key, edHeader, with("exp", nil))},
		{name: "ExpNotANumber", token: signEdDSA(t, key, edHeader, with("exp", "never"))},
		{name: "UnknownKid", token: signEdDSA(t, key, map[string]any{"alg": "EdDSA", "typ": "JWT", "kid": "not-a-key"}, claims)},
		{name: "NoKid", token: signEdDSA(t, key, map[string]any{"alg": "EdDSA", "typ": "JWT"}, claims)},
		{name: "ForeignKeyUnknownKid", token: signEdDSA(t, foreign, map[string]any{"alg": "EdDSA", "kid": "attacker"}, claims)},
		{name: "TamperedUnit", token: hdr + "." + tamperedUnit + "." + sig},
		{name: "TamperedRole", token: hdr + "." + tamperedRole + "." + sig},
		{name: "NoSignature", token: hdr + "." + strings.Split(good, ".")[1] + "."},
		{name: "IssuedInTheFuture", token: signEdDSA(t, key, edHeader, with("iat", now.Add(time.Hour).Unix()))},
		{name: "ExpiredForged", token: signEdDSA(t, key, edHeader, with("exp", now.Add(-time.Minute).Unix())), code: syncproto.CodeTokenExpired},
		{name: "Garbage", token: "not-a-token"},
		{name: "Dots", token: "a.b.c"},
		{name: "Oversized", token: strings.Repeat("A", 8<<10)},
		{name: "BasicAuth", auth: "Basic YTE6ZmllbGQtcGFzc3dvcmQtMQ=="},
		{name: "BearerLowercase", auth: "bearer " + good},
		{name: "BearerEmpty", auth: "Bearer "},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req := rawReq{Path: "/v1/sync/pull", ContentType: syncproto.MediaJSON, Body: mustEncode(t, syncproto.JSON, syncproto.PullRequest{DeviceID: a1.ID}), Token: tc.token}
			if tc.auth != "" {
				req.Token = ""
				req.Header = map[string]string{"Authorization": tc.auth}
			}
			code := tc.code
			if code == "" {
				code = syncproto.CodeUnauthorized
			}
			wantError(t, send(t, srv.URL, req), http.StatusUnauthorized, code)
		})
	}

	// Well signed with the server's key: the claims name a user and
	// device, but what a token may do comes from the store.
	t.Run("WellSignedClaimsAreNotTrusted", func(t *testing.T) {
		pull := func(t *testing.T, token, deviceID string) rawResp {
			return send(t, srv.URL, rawReq{Path: "/v1/sync/pull", Token: token, ContentType: syncproto.MediaJSON,
				Body: mustEncode(t, syncproto.JSON, syncproto.PullRequest{DeviceID: deviceID})})
		}
		// a1's token claiming the center's role and unit pulls a1's scope.
		elevated := signEdDSA(t, key, edHeader, with("unit", unitCity).also("role", syncproto.RoleCenter).also("adm", true))
		var pr syncproto.PullResponse
		wantOK(t, pull(t, elevated, a1.ID), &pr)
		for _, ch := range pr.Changes {
			if w, ok := ch.Data.(*syncproto.Warning); !ok || w.Assignee != c.userIDs["a1"] {
				t.Fatalf("a token claiming the center's role pulled %s %s", ch.Entity, ch.ID)
			}
		}
		r := send(t, srv.URL, rawReq{Path: "/v1/admin/units", Token: elevated, ContentType: syncproto.MediaJSON,
			Body: mustEncode(t, syncproto.JSON, syncproto.UnitsRequest{Units: []syncproto.UnitInput{{Code: "411009", Name: "x"}}})})
		wantError(t, r, http.StatusForbidden, syncproto.CodeForbidden)
		// a1's user with leadB's device, or with a device never registered.
		for _, dev := range []string{leadB.ID, uuid.NewString()} {
			wantDenied(t, pull(t, signEdDSA(t, key, edHeader, with("dev", dev)), dev))
		}
		// A user id that does not exist, on a1's device.
		wantDenied(t, pull(t, signEdDSA(t, key, edHeader, with("sub", uuid.NewString())), a1.ID))
	})

	t.Run("RevokedDevice", func(t *testing.T) {
		for _, wipe := range []bool{true, false} {
			d := srv.Login(t, "b1", testPassword)
			if _, err := c.admin.RevokeDevice(ctx, d.ID, wipe); err != nil {
				t.Fatal(err)
			}
			check := func(what string, r rawResp) {
				t.Helper()
				e := wantError(t, r, http.StatusForbidden, syncproto.CodeDeviceRevoked)
				if got, ok := e.Details["wipe"].(bool); !ok || got != wipe {
					t.Fatalf("%s: details.wipe = %v, want %v", what, e.Details["wipe"], wipe)
				}
			}
			for _, codec := range []syncproto.Codec{syncproto.JSON, syncproto.Msgpack} {
				check("pull", send(t, srv.URL, rawReq{Path: "/v1/sync/pull", Token: d.Token(), ContentType: codec.MediaType(),
					Body: mustEncode(t, codec, syncproto.PullRequest{DeviceID: d.ID})}))
				check("push", send(t, srv.URL, rawReq{Path: "/v1/sync/push", Token: d.Token(), ContentType: codec.MediaType(),
					Body: mustEncode(t, codec, syncproto.PushRequest{DeviceID: d.ID, Ops: []syncproto.Op{op(d, syncproto.OpEscalated, ids["WB1"], 0, syncproto.OpBody{Reason: "x"})}})}))
				check("refresh", send(t, srv.URL, rawReq{Path: "/v1/auth/refresh", ContentType: codec.MediaType(),
					Body: mustEncode(t, codec, syncproto.RefreshRequest{RefreshToken: d.Login.RefreshToken, DeviceID: d.ID})}))
			}
			check("login", send(t, srv.URL, rawReq{Path: "/v1/auth/login", ContentType: syncproto.MediaJSON,
				Body: mustEncode(t, syncproto.JSON, syncproto.LoginRequest{Username: "b1", Password: testPassword, DeviceID: d.ID})}))
		}
	})

	t.Run("RefreshReuse", func(t *testing.T) {
		d := srv.Login(t, "leadA", testPassword)
		rt0 := d.Login.RefreshToken
		var first syncproto.TokenResponse
		wantOK(t, refresh(t, srv, rt0, d.ID), &first)
		if first.RefreshToken == "" || first.RefreshToken == rt0 || first.AccessToken == "" {
			t.Fatalf("refresh did not rotate: %+v", first)
		}
		// Another device's id with a good token is refused too.
		wantError(t, refresh(t, srv, first.RefreshToken, leadA.ID), http.StatusUnauthorized, syncproto.CodeUnauthorized)
		// The spent token again once its successor was used (not a
		// retry of a lost answer, refresh_test.go has those): refused,
		// and it ends the chain.
		var second syncproto.TokenResponse
		wantOK(t, refresh(t, srv, first.RefreshToken, d.ID), &second)
		wantError(t, refresh(t, srv, rt0, d.ID), http.StatusUnauthorized, syncproto.CodeUnauthorized)
		wantError(t, refresh(t, srv, second.RefreshToken, d.ID), http.StatusUnauthorized, syncproto.CodeUnauthorized)
		wantError(t, refresh(t, srv, rt0, d.ID), http.StatusUnauthorized, syncproto.CodeUnauthorized)
		wantError(t, refresh(t, srv, "made-up-refresh-token", d.ID), http.StatusUnauthorized, syncproto.CodeUnauthorized)
	})

	t.Run("LogoutEndsChain", func(t *testing.T) {
		d := srv.Login(t, "county1", testPassword)
		var next syncproto.TokenResponse
		wantOK(t, refresh(t, srv, d.Login.RefreshToken, d.ID), &next)
		r := send(t, srv.URL, rawReq{Path: "/v1/auth/logout", Token: next.AccessToken, ContentType: syncproto.MediaJSON, Body: []byte("{}")})
		wantOK(t, r, nil)
		wantError(t, refresh(t, srv, next.RefreshToken, d.ID), http.StatusUnauthorized, syncproto.CodeUnauthorized)
		wantError(t, refresh(t, srv, d.Login.RefreshToken, d.ID), http.StatusUnauthorized, syncproto.CodeUnauthorized)
	})

	login := func(t *testing.T, username, password, deviceID string) rawResp {
		return send(t, srv.URL, rawReq{Path: "/v1/auth/login", ContentType: syncproto.MediaJSON,
			Body: mustEncode(t, syncproto.JSON, syncproto.LoginRequest{Username: username, Password: password, DeviceID: deviceID, DeviceName: "x", Platform: "test"})})
	}

	t.Run("DeviceOfAnotherUser", func(t *testing.T) {
		wantError(t, login(t, "a2x", testPassword, a1.ID), http.StatusForbidden, syncproto.CodeForbidden)
		// a1's device still belongs to a1.
		if _, err := a1.Pull(ctx, syncproto.PullRequest{DeviceID: a1.ID}); err != nil {
			t.Fatalf("a1 after another user's login with its device: %v", err)
		}
	})

	t.Run("SameAnswerForWrongPasswordAndUnknownUser", func(t *testing.T) {
		wrong := login(t, "a1", "wrong-password-9", uuid.NewString())
		unknown := login(t, "nobody-here", "wrong-password-9", uuid.NewString())
		wantError(t, wrong, http.StatusUnauthorized, syncproto.CodeUnauthorized)
		wantError(t, unknown, http.StatusUnauthorized, syncproto.CodeUnauthorized)
		if string(wrong.Body) != string(unknown.Body) {
			t.Fatalf("wrong password %q, unknown user %q", wrong.Body, unknown.Body)
		}
	})

	// Last, since it moves the server's clock for good.
	t.Run("Expired", func(t *testing.T) {
		d := srv.Login(t, "center1", testPassword)
		pull := func() rawResp {
			return send(t, srv.URL, rawReq{Path: "/v1/sync/pull", Token: d.Token(), ContentType: syncproto.MediaMsgpack,
				Body: mustEncode(t, syncproto.Msgpack, syncproto.PullRequest{DeviceID: d.ID})})
		}
		// 15-minute tokens on a clock that also runs: 10 minutes on
		// leaves 5 of real time for the next pull, 6 more expire it.
		wantOK(t, pull(), nil)
		clock.Add(10 * time.Minute)
		wantOK(t, pull(), nil)
		clock.Add(6 * time.Minute)
		wantError(t, pull(), http.StatusUnauthorized, syncproto.CodeTokenExpired)
		// The refresh token still works and gives a token that does.
		var next syncproto.TokenResponse
		wantOK(t, refresh(t, srv, d.Login.RefreshToken, d.ID), &next)
		d.SetToken(next.AccessToken)
		wantOK(t, pull(), nil)
	})
}

// TestSecurity_Logs runs imports, pushes with notes, pulls and failed logins
// against a server whose log the test keeps, and finds no personal data,
// password or token in it.
func TestSecurity_Logs(t *testing.T) {
	var logBuf servertest.Logs
	logger := slog.New(slog.NewJSONHandler(&logBuf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv := servertest.Start(t, servertest.Options{Logger: logger})
	ctx := context.Background()
	admin := srv.Admin(t)
	if _, err := admin.UpsertUnits(ctx, servertest.CityUnits[:3]); err != nil {
		t.Fatal(err)
	}
	const (
		cadrePassword = "cadre-Secret-Pass-77"
		leadPassword  = "lead-Secret-Pass-88"
		wrongPassword = "wrong-Secret-Pass-99"
	)
	if _, err := admin.UpsertUsers(ctx, []syncproto.UserInput{
		{Username: "logcadre", Password: cadrePassword, Name: "Cadre-Realname-刘", Unit: unitVillA1},
		{Username: "loglead", Password: leadPassword, Name: "Lead-Realname-王", Unit: unitTownA},
	}); err != nil {
		t.Fatal(err)
	}
	cadre := srv.Login(t, "logcadre", cadrePassword)
	lead := srv.Login(t, "loglead", leadPassword)

	secrets := []string{servertest.AdminPassword, cadrePassword, leadPassword, wrongPassword, "Cadre-Realname-刘", "Lead-Realname-王"}
	warned := time.Now().Add(-time.Hour).UTC().Truncate(time.Second)
	rows := []syncproto.FeedWarning{
		{ExternalID: "LOG-1", Name: "Victim-Name-One-张三", Phone: "13912345678", IDTail: "86421X", Address: "Secret-Addr-One 幸福路7号", Unit: unitVillA1, FraudType: "刷单返利", Risk: syncproto.RiskHigh, WarnedAt: warned},
		{ExternalID: "LOG-2", Name: "Victim-Name-Two-李四", Phone: "13787654321", IDTail: "97531Y", Address: "Secret-Addr-Two 和平街9号", Unit: unitTownA, FraudType: "冒充客服", Risk: syncproto.RiskLow, WarnedAt: warned},
		// An invalid row carrying personal data too.
		{ExternalID: "LOG-3", Name: "Victim-Name-Three-王五", Phone: "13611112222", IDTail: "11223Z", Address: "Secret-Addr-Three", Unit: unitTownA, FraudType: "x", Risk: "extreme", WarnedAt: warned},
	}
	for _, r := range rows {
		secrets = append(secrets, r.Name, r.Phone, r.IDTail, r.Address)
	}
	resp, err := admin.ImportFeed(ctx, rows)
	if err != nil || len(resp.Created) != 2 {
		t.Fatalf("import: %+v %v", resp, err)
	}
	w1 := resp.Created[0].ID
	csvRow := syncproto.FeedWarning{ExternalID: "LOG-CSV", Name: "Victim-Name-Csv-赵六", Phone: "13533334444", IDTail: "55667W", Address: "Secret-Addr-Csv", Unit: unitTownA, FraudType: "投资理财", Risk: syncproto.RiskMedium, WarnedAt: warned}
	secrets = append(secrets, csvRow.Name, csvRow.Phone, csvRow.IDTail, csvRow.Address)
	var sb strings.Builder
	if err := feed.WriteCSV(&sb, []syncproto.FeedWarning{csvRow}); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.ImportFeedCSV(ctx, []byte(sb.String())); err != nil {
		t.Fatal(err)
	}

	notes := "Secret-Notes 对方称已转账两万元给所谓客服"
	secrets = append(secrets, notes, "Secret-Reason-escalate", "Secret-Comment-review")
	b := recordBody(syncproto.OutcomeDissuaded, true)
	b.Notes = notes
	push(t, cadre,
		op(cadre, syncproto.OpRecorded, w1, 0, b),
		op(cadre, syncproto.OpEscalated, w1, 0, syncproto.OpBody{Reason: "Secret-Reason-escalate"}),
	)
	push(t, lead, op(lead, syncproto.OpReviewed, w1, 0, syncproto.OpBody{Decision: syncproto.DecisionReturn, Comment: "Secret-Comment-review"}))
	// A rejected op and a refused request, both carrying notes.
	bad := recordBody(syncproto.OutcomeDissuaded, true)
	bad.Notes = notes
	push(t, cadre, op(cadre, syncproto.OpRecorded, uuid.NewString(), 0, bad))
	badOp := op(cadre, "no.such.type", w1, 0, bad)
	if _, err := cadre.Push(ctx, syncproto.PushRequest{DeviceID: cadre.ID, Ops: []syncproto.Op{badOp}}); errCode(err) != syncproto.CodeInvalidRequest {
		t.Fatalf("bad op: %v", err)
	}
	pullAll(t, cadre, "", 0)
	pullAll(t, lead, "", 0)
	// Failed logins and refreshes, and forged tokens.
	if _, err := srv.LoginDevice("logcadre", wrongPassword, uuid.NewString()); errCode(err) != syncproto.CodeUnauthorized {
		t.Fatalf("wrong password: %v", err)
	}
	if _, err := srv.LoginDevice("Unknown-User-Secret", wrongPassword, uuid.NewString()); errCode(err) != syncproto.CodeUnauthorized {
		t.Fatalf("unknown user: %v", err)
	}
	bogusRefresh := "Bogus-Refresh-Token-Secret-123"
	if _, err := srv.Client().Refresh(ctx, syncproto.RefreshRequest{RefreshToken: bogusRefresh, DeviceID: cadre.ID}); errCode(err) != syncproto.CodeUnauthorized {
		t.Fatalf("bogus refresh: %v", err)
	}
	forged := srv.Client()
	forged.SetToken("Forged.Token-Secret.Value")
	if _, err := forged.Pull(ctx, syncproto.PullRequest{DeviceID: cadre.ID}); errCode(err) != syncproto.CodeUnauthorized {
		t.Fatalf("forged token: %v", err)
	}
	refreshed, err := srv.Client().Refresh(ctx, syncproto.RefreshRequest{RefreshToken: lead.Login.RefreshToken, DeviceID: lead.ID})
	if err != nil {
		t.Fatal(err)
	}
	secrets = append(secrets, bogusRefresh, "Forged.Token-Secret.Value", "Unknown-User-Secret")
	for _, d := range []*servertest.Device{admin, cadre, lead} {
		secrets = append(secrets, d.Token(), d.Login.AccessToken, d.Login.RefreshToken)
	}
	secrets = append(secrets, refreshed.AccessToken, refreshed.RefreshToken)

	log := logBuf.String()
	if !strings.Contains(log, `"route":"/v1/sync/push"`) || !strings.Contains(log, `"route":"/v1/auth/login"`) {
		t.Fatalf("the log does not hold the request lines this test relies on:\n%s", log)
	}
	for _, s := range secrets {
		if s == "" {
			continue
		}
		// Also the signature alone: a token cut in a log line is still a leak.
		probe := []string{s}
		if parts := strings.Split(s, "."); len(parts) == 3 && len(parts[2]) > 20 {
			probe = append(probe, parts[2])
		}
		for _, p := range probe {
			if strings.Contains(log, p) {
				t.Errorf("the log holds %q", p)
			}
		}
	}
	// The bare Chinese parts of names and addresses too.
	for _, s := range []string{"张三", "幸福路7号", "两万元"} {
		if strings.Contains(log, s) {
			t.Errorf("the log holds %q", s)
		}
	}
}
