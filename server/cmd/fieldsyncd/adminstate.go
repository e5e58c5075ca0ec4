package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/fieldsync/fieldsync/internal/durable"
	"github.com/fieldsync/fieldsync/syncproto"
)

// adminState is what --state-file keeps between runs of an admin tool: its
// device id and the refresh token of its session.
//
// Signing in with the password every night is what an attacker can stop:
// five wrong passwords for the username lock it, and anyone can send them.
// A refresh is not subject to that lockout, so a tool that keeps its
// session refreshes it instead, and needs the password only on its first
// run or once the session has ended (a refresh token lives 30 days; a
// nightly run renews it). The device id is random, made on first use, so
// nobody can claim it before the tool does.
//
// The file is as secret as the password for 30 days: it is written 0600
// and never logged.
type adminState struct {
	// URL, User and Tool are whom the session is with: a refresh token
	// is sent only to the server and for the user it was issued by and
	// for, and one file serves one tool.
	URL  string `json:"url"`
	User string `json:"user"`
	Tool string `json:"tool"`
	// DeviceID is the tool's device at the server, a random UUID.
	DeviceID string `json:"device_id"`
	// RefreshToken continues the session; empty before the first
	// sign-in succeeded.
	RefreshToken string `json:"refresh_token,omitempty"`
	// Saved is when the token was last saved: the session ends 30 days
	// after it unless a run renews it.
	Saved time.Time `json:"saved"`
}

// resume signs c in with the session --state-file keeps, or with the
// password when there is none or it has ended, and saves the session for
// the next run.
func (f adminFlags) resume(ctx context.Context, c *adminClient, platform string) (err error) {
	path := *f.stateFile
	url := strings.TrimRight(*f.url, "/")
	// Two runs at once (an overlapping cron job) would both spend the
	// saved refresh token. The server takes the second use for a stolen
	// token, once the first run has used its new one, and ends the
	// session; before that, for a retry of a lost answer, and retires the
	// first run's new token, which the file may end up holding. The
	// second waits here until the first has finished (c.finish releases
	// the lock): not only until it has saved its token, since the server
	// takes one backup at a time and would refuse the second's while the
	// first's is still streaming.
	unlock, err := lockFile(path + ".lock")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			unlock()
			return
		}
		c.unlock = unlock
	}()
	st, err := loadAdminState(path)
	if err != nil {
		return err
	}
	// ended says why a saved session was not used, if there was one.
	ended := ""
	switch {
	case st == nil && *f.passwordFile == "":
		return fmt.Errorf("--password-file is required for the first run with --state-file %s", path)
	case st == nil:
		st = &adminState{URL: url, User: *f.user, Tool: platform, DeviceID: uuid.NewString()}
		// Saved before signing in, so the device id is the same at the
		// next run even if this one fails, and a state file that cannot
		// be written is found before a session is made.
		if err := st.save(path); err != nil {
			return err
		}
	case st.Tool != platform:
		return fmt.Errorf("--state-file %s is the state of %s; give each tool a state file of its own", path, st.Tool)
	case st.User != *f.user:
		return fmt.Errorf("--state-file %s holds the session of user %s, not %s; give each user a state file of its own", path, st.User, *f.user)
	case st.URL != url:
		// The server moved, or the flag is wrong: the token is not sent
		// to another server. The password starts a session at this one.
		ended = fmt.Sprintf("the session saved in %s is with %s, not %s", path, st.URL, url)
		st.URL, st.RefreshToken = url, ""
	case st.RefreshToken == "":
		// The first run made the device id but did not sign in.
	default:
		err := f.refresh(ctx, c, st, path)
		if err == nil {
			return nil
		}
		var perr *syncproto.Error
		if !errors.As(err, &perr) || perr.Code != syncproto.CodeUnauthorized {
			return revoked(err, st, path)
		}
		// Expired, ended by a logout or a revocation of the chain, or
		// spent elsewhere (a copy of the file used, or a run whose answer
		// was lost): the password starts a new session on the same device.
		ended = fmt.Sprintf("the session saved in %s has ended (%s)", path, perr.Message)
		st.RefreshToken = ""
	}
	switch {
	case *f.passwordFile == "" && ended == "":
		return fmt.Errorf("--state-file %s holds no session yet; sign in with --password-file", path)
	case *f.passwordFile == "":
		return fmt.Errorf("%s; sign in again with --password-file", ended)
	case ended != "":
		fmt.Fprintf(f.notes, "fieldsyncd: %s; signing in with --password-file\n", ended)
	}
	password, err := f.password()
	if err != nil {
		return err
	}
	resp, err := f.signIn(ctx, c, password, st.DeviceID, platform)
	if err != nil {
		return revoked(err, st, path)
	}
	return f.keep(c, st, resp.RefreshToken, path)
}

// revoked says what to do when an administrator revoked the tool's
// device. The tool does not replace it by itself: a revocation is meant
// to stop it.
func revoked(err error, st *adminState, path string) error {
	var perr *syncproto.Error
	if errors.As(err, &perr) && perr.Code == syncproto.CodeDeviceRevoked {
		return fmt.Errorf("%w; this tool's device %s was revoked: delete %s to sign in as a new device", err, st.DeviceID, path)
	}
	return err
}

// refresh continues the saved session. The new refresh token is saved
// before the new access token is used: the old one is spent now, and a
// run that used the access token but lost the refresh token would end
// the session for the next.
func (f adminFlags) refresh(ctx context.Context, c *adminClient, st *adminState, path string) error {
	rctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	resp, err := c.Refresh(rctx, syncproto.RefreshRequest{RefreshToken: st.RefreshToken, DeviceID: st.DeviceID})
	if err != nil {
		return fmt.Errorf("refresh the session of %s at %s: %w", *f.user, *f.url, err)
	}
	return f.keep(c, st, resp.RefreshToken, path)
}

// keep saves refresh as the session's token. If it cannot be saved the
// access token is dropped unused and the run fails.
func (f adminFlags) keep(c *adminClient, st *adminState, refresh, path string) error {
	st.RefreshToken, st.Saved = refresh, time.Now().UTC()
	if err := st.save(path); err != nil {
		c.SetToken("")
		return fmt.Errorf("%w; the session could not be kept, the next run signs in with the password", err)
	}
	return nil
}

// loadAdminState reads a state file; nil, nil when there is none yet.
func loadAdminState(path string) (*adminState, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read --state-file: %w", err)
	}
	var st adminState
	// The error of a failed decode may quote the file, which holds a
	// token: it is not passed on.
	if json.Unmarshal(data, &st) != nil || !syncproto.ValidUUID(st.DeviceID) || st.Tool == "" {
		return nil, fmt.Errorf("--state-file %s is damaged; delete it to sign in anew with --password-file", path)
	}
	return &st, nil
}

// save writes the state to path: to a temporary file in the same
// directory, 0600, fsynced, then renamed over path, so a crash leaves the
// old state or the new one, never half of one.
func (st *adminState) save(path string) error {
	data, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return fmt.Errorf("encode state: %w", err)
	}
	if err := durable.WriteFile(path, append(data, '\n')); err != nil {
		return fmt.Errorf("save --state-file: %w", err)
	}
	return nil
}
