package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/fieldsync/fieldsync/client-sdk/remote"
	"github.com/fieldsync/fieldsync/syncproto"
)

// adminFlags are the flags of the commands that manage a running server
// over HTTP as one of its administrators (backup; key rotation).
type adminFlags struct {
	url, user, passwordFile, caCert, stateFile *string
	// notes is where a run says how it signed in when that is worth
	// knowing (a saved session that ended): the flag set's output, stderr.
	notes io.Writer
}

func addAdminFlags(fs *flag.FlagSet) adminFlags {
	return adminFlags{
		url:          fs.String("url", "", "the server's base URL, e.g. https://fieldsync.example (required)"),
		user:         fs.String("user", "", "an administrator's username (required)"),
		passwordFile: fs.String("password-file", "", "file holding that administrator's password (required unless --state-file holds a session)"),
		caCert:       fs.String("ca-cert", "", "PEM file of the CA that signed the server's certificate, when the system's do not"),
		stateFile:    fs.String("state-file", "", "file keeping this tool's device id and session between runs (0600; made on first use), so later runs refresh the session instead of signing in with the password"),
		notes:        fs.Output(),
	}
}

func (f adminFlags) validate() error {
	switch {
	case *f.url == "":
		return errors.New("--url is required")
	case !strings.HasPrefix(*f.url, "http://") && !strings.HasPrefix(*f.url, "https://"):
		return errors.New("--url must start with http:// or https://")
	case *f.user == "":
		return errors.New("--user is required")
	case *f.passwordFile == "" && *f.stateFile == "":
		return errors.New("--password-file is required (or --state-file holding the session of an earlier run)")
	}
	return nil
}

// adminClient is a signed-in administrator's connection to a server.
type adminClient struct {
	*remote.Client
	http *http.Client
	// kept is set when a state file keeps the session for the next run:
	// logging out would end the refresh chain that run continues.
	kept bool
	// unlock lets the next run of the same state file go; nil without
	// a state file.
	unlock func()
}

// login signs in as platform, the tool ("fieldsyncd-backup").
//
// With --state-file, the tool continues the session the file keeps from
// the last run (see adminstate.go), and needs the password only for the
// first run or once that session has ended. Without it, the tool signs in
// with the password every time, as a new device with a random id, and
// signs out at the end. (A device id must be one nobody else can claim
// first, since it belongs to the first user who signs in with it; and it is
// no secret, the server logs it, so one derived from the password would be
// a target for offline guessing. The state file keeps one random id.)
func (f adminFlags) login(ctx context.Context, platform string) (*adminClient, error) {
	c, err := f.connect()
	if err != nil {
		return nil, err
	}
	if *f.stateFile != "" {
		if err := f.resume(ctx, c, platform); err != nil {
			return nil, err
		}
		c.kept = true
		return c, nil
	}
	password, err := f.password()
	if err != nil {
		return nil, err
	}
	if _, err := f.signIn(ctx, c, password, uuid.NewString(), platform); err != nil {
		return nil, err
	}
	return c, nil
}

// connect makes the HTTP client, trusting --ca-cert when given.
func (f adminFlags) connect() (*adminClient, error) {
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.ResponseHeaderTimeout = 2 * time.Minute
	if *f.caCert != "" {
		pem, err := os.ReadFile(*f.caCert)
		if err != nil {
			return nil, fmt.Errorf("read --ca-cert: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--ca-cert %s holds no PEM certificate", *f.caCert)
		}
		transport.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	// No overall timeout: a backup takes as long as it takes. Each call
	// below is bounded by its context or by the stream's idle timeout.
	c := &adminClient{Client: remote.New(*f.url), http: &http.Client{Transport: transport}}
	c.Client.HTTP = c.http
	c.Client.Codec = syncproto.JSON
	return c, nil
}

// password reads --password-file, without its line ending.
func (f adminFlags) password() (string, error) {
	data, err := os.ReadFile(*f.passwordFile)
	if err != nil {
		return "", fmt.Errorf("read password: %w", err)
	}
	return strings.TrimRight(string(data), "\r\n"), nil
}

// signIn signs in with the password from device.
func (f adminFlags) signIn(ctx context.Context, c *adminClient, password, device, platform string) (*syncproto.TokenResponse, error) {
	lctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	resp, err := c.Login(lctx, syncproto.LoginRequest{
		Username: *f.user, Password: password,
		DeviceID: device, DeviceName: platform, Platform: platform,
	})
	if err != nil {
		return nil, fmt.Errorf("sign in to %s as %s: %w", *f.url, *f.user, err)
	}
	return resp, nil
}

// finish ends the run's use of the server. It ends the session's refresh
// chain, even when ctx was cancelled, so an interrupted run leaves no live
// session behind; a session a state file keeps is left alone, and the
// file's lock is let go for the next run, which continues it.
func (c *adminClient) finish(ctx context.Context) error {
	if c.unlock != nil {
		defer c.unlock()
	}
	if c.kept {
		return nil
	}
	lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	return c.Logout(lctx)
}

// download GETs path and returns the response body as a stream, which
// fails once nothing has arrived for idle. An error answer is returned as
// the protocol's error.
func (c *adminClient) download(ctx context.Context, path, wantType string, idle time.Duration) (io.ReadCloser, error) {
	ctx, cancel := context.WithCancel(ctx)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.BaseURL+path, nil)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Accept", wantType+", "+syncproto.JSON.MediaType())
	req.Header.Set(syncproto.HeaderProtocol, syncproto.ProtocolVersion)
	req.Header.Set("Authorization", "Bearer "+c.Token())
	resp, err := c.http.Do(req)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("GET %s: %w", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		defer cancel()
		defer resp.Body.Close()
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		var env syncproto.ErrorEnvelope
		if codec := syncproto.CodecFor(resp.Header.Get("Content-Type")); codec != nil && codec.Unmarshal(data, &env) == nil && env.Error != nil {
			return nil, fmt.Errorf("GET %s: %d %w", path, resp.StatusCode, env.Error)
		}
		return nil, fmt.Errorf("GET %s: the server answered %s", path, resp.Status)
	}
	if ct := resp.Header.Get("Content-Type"); ct != wantType {
		cancel()
		resp.Body.Close()
		return nil, fmt.Errorf("GET %s: the server answered %q, not %s", path, ct, wantType)
	}
	return &idleBody{body: resp.Body, timer: time.AfterFunc(idle, cancel), idle: idle, cancel: cancel}, nil
}

// idleBody cancels its request when a read waits longer than idle.
type idleBody struct {
	body   io.ReadCloser
	timer  *time.Timer
	idle   time.Duration
	cancel context.CancelFunc
}

func (b *idleBody) Read(p []byte) (int, error) {
	n, err := b.body.Read(p)
	b.timer.Reset(b.idle)
	return n, err
}

func (b *idleBody) Close() error {
	b.timer.Stop()
	b.cancel()
	return b.body.Close()
}
