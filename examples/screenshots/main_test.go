package main

import (
	"testing"

	"github.com/fieldsync/fieldsync/server/demo"
)

// TestViewers: every person photographed is a user of the demo city with
// the password the demo gives their role, so the sign-ins cannot drift
// from make demo.
func TestViewers(t *testing.T) {
	users := map[string]string{}
	for _, u := range demo.City(1).Users {
		users[u.Username] = u.Password
	}
	vs := viewers(1)
	if len(vs) < 3 {
		t.Fatalf("%d viewers: the center, a county and a lead are photographed", len(vs))
	}
	for _, v := range vs {
		pw, ok := users[v.username]
		if !ok {
			t.Errorf("%s signs in as %q, which the demo city does not have", v.name, v.username)
		}
		if pw != v.password {
			t.Errorf("%s signs in with a password the demo does not give %q", v.name, v.username)
		}
		if len(v.pages) == 0 || v.pages[0] != "/console/" {
			t.Errorf("%s: the dashboard comes first, got %v", v.name, v.pages)
		}
	}
}
