package app

import (
	"context"
	"time"

	"github.com/google/uuid"

	"github.com/fieldsync/fieldsync/server/store"
	"github.com/fieldsync/fieldsync/syncproto"
)

// Defaults of Config.ConsoleIdle and Config.ConsoleLifetime. The console
// shows the names and whole phone numbers of people being defrauded, often
// on a township's shared desk: a browser left an hour unused asks for the
// password again (the wall reloads itself and stays signed in), and none
// stays signed in past a working week.
const (
	DefaultConsoleIdle     = time.Hour
	DefaultConsoleLifetime = 7 * 24 * time.Hour
)

// ConsoleSignIn is a browser signed in to the web console: the tokens of
// its session and the id of the device its actions are ops of.
type ConsoleSignIn struct {
	*syncproto.TokenResponse
	DeviceID string
}

// ConsoleLogin signs a browser in to the web console. Its session is not
// a phone (store.Device.Console): it never counts toward the phone cap,
// a user keeps at most store.MaxConsoleSessions of them (one more ends
// the oldest), it ends on Logout, after ConsoleIdle unused and
// ConsoleLifetime after this sign-in, and then nothing of it is kept. A
// wrong password is unauthorized as for Login; a village cadre, whose
// tool is the phone, is forbidden and nothing is stored.
func (a *App) ConsoleLogin(ctx context.Context, username, password string) (*ConsoleSignIn, error) {
	deviceID := uuid.Must(uuid.NewV7()).String()
	if err := validateLogin(&syncproto.LoginRequest{Username: username, Password: password, DeviceID: deviceID}); err != nil {
		return nil, err
	}
	u, err := a.checkPassword(ctx, username, password)
	if err != nil {
		return nil, err
	}
	if !syncproto.IsManager(u.Role) {
		return nil, syncproto.Errorf(syncproto.CodeForbidden, "the console is for township, county and center users; village cadres use the phone app")
	}
	// The console ends an idle session itself; the store's limit is the
	// backstop that refuses its refresh token. It hears of a browser only
	// when it refreshes, after its access token expires, and so allows an
	// access token's lifetime more.
	resp, err := a.signIn(ctx, u, store.SignIn{DeviceID: deviceID, Name: "网页控制台", Platform: "web",
		RefreshTTL: a.cfg.ConsoleLifetime, Console: true, Idle: a.cfg.ConsoleIdle + a.cfg.AccessTTL, Node: a.cfg.NodeID})
	if err != nil {
		return nil, err
	}
	return &ConsoleSignIn{TokenResponse: resp, DeviceID: deviceID}, nil
}

// ConsoleLimits returns how long a console session may stay unused, and
// how long it lives at most.
func (a *App) ConsoleLimits() (idle, lifetime time.Duration) {
	return a.cfg.ConsoleIdle, a.cfg.ConsoleLifetime
}

// EndConsoleSessions forgets the console sessions of an earlier run: the
// console keeps its sessions in memory, so a restart signs every browser
// out, and this ends what the store kept of them. On a cluster it ends
// only this node's (Config.NodeID): the other nodes' browsers stay signed
// in (docs/CLUSTER.md).
func (a *App) EndConsoleSessions(ctx context.Context) error {
	n, err := a.store.EndConsoleSessions(ctx, a.cfg.NodeID)
	if err != nil {
		return err
	}
	if n > 0 {
		a.log.Info("console sessions of the last run ended", "sessions", n)
	}
	return nil
}

// phones keeps the devices that are not console sessions: what the
// accounts page lists, and offers to revoke and wipe.
func phones(devices []store.Device) []store.Device {
	out := devices[:0:0]
	for _, d := range devices {
		if !d.Console {
			out = append(out, d)
		}
	}
	return out
}
