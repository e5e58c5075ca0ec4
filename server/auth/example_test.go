package auth_test

import (
	"fmt"
	"time"

	"github.com/fieldsync/fieldsync/server/auth"
	"github.com/fieldsync/fieldsync/syncproto"
)

// The life of an access token: issue at login, verify on every request,
// token_expired once the TTL has passed.
func ExampleIssuer() {
	now := time.Date(2025, 3, 14, 9, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }

	key, err := auth.NewKey(now) // the store keeps it
	if err != nil {
		panic(err)
	}
	iss, err := auth.NewIssuer([]auth.Key{key}, key.ID, 15*time.Minute, clock)
	if err != nil {
		panic(err)
	}

	token, expiresIn, err := iss.Issue(auth.Claims{UserID: "u-1", Role: "village", Unit: "411002001001", DeviceID: "d-1"})
	if err != nil {
		panic(err)
	}
	fmt.Println("expires in", expiresIn)

	c, err := iss.Verify(token)
	fmt.Println(c.UserID, c.DeviceID, c.Role, err)

	now = now.Add(time.Hour)
	_, err = iss.Verify(token)
	fmt.Println(syncproto.ErrorCode(err))
	// Output:
	// expires in 15m0s
	// u-1 d-1 village <nil>
	// token_expired
}

// A login checks the password when the user exists and burns the same time
// when it does not, so timing does not reveal usernames.
func ExampleCheckPassword() {
	hash, err := auth.HashPassword("correct horse battery staple") // at user creation
	if err != nil {
		panic(err)
	}

	login := func(found bool, pw string) bool {
		if !found {
			auth.DummyCheck(pw)
			return false
		}
		return auth.CheckPassword(hash, pw)
	}
	fmt.Println(login(true, "correct horse battery staple"))
	fmt.Println(login(true, "wrong"))
	fmt.Println(login(false, "correct horse battery staple"))
	// Output:
	// true
	// false
	// false
}
