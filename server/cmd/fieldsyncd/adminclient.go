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
	url, user, passwordFile, caCert *string
}

func addAdminFlags(fs *flag.FlagSet) adminFlags {
	return adminFlags{
		url:          fs.String("url", "", "the server's base URL, e.g. https://fieldsync.example (required)"),
		user:         fs.String("user", "", "an administrator's username (required)"),
		passwordFile: fs.String("password-file", "", "file holding that administrator's password (required)"),
		caCert:       fs.String("ca-cert", "", "PEM file of the CA that signed the server's certificate, when the system's do not"),
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
	case *f.passwordFile == "":
		return errors.New("--password-file is required")
	}
	return nil
}

// adminClient is a signed-in administrator's connection to a server.
type adminClient struct {
	*remote.Client
	http *http.Client
}

// login signs in from a device id that is the same at every run of the
// same tool by the same user, so a nightly backup shows up as one device
// in the admin's device list, not one per night. platform names the tool
// ("fieldsyncd-backup").
func (f adminFlags) login(ctx context.Context, platform string) (*adminClient, error) {
	password, err := os.ReadFile(*f.passwordFile)
	if err != nil {
		return nil, fmt.Errorf("read password: %w", err)
	}
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
	device := uuid.NewSHA1(uuid.NameSpaceURL, []byte("fieldsyncd:"+platform+":"+*f.user)).String()
	lctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	_, err = c.Login(lctx, syncproto.LoginRequest{
		Username: *f.user, Password: strings.TrimRight(string(password), "\r\n"),
		DeviceID: device, DeviceName: platform, Platform: platform,
	})
	if err != nil {
		return nil, fmt.Errorf("sign in to %s as %s: %w", *f.url, *f.user, err)
	}
	return c, nil
}

// logout ends the session's refresh chain; it runs even when ctx was
// cancelled, so an interrupted run leaves no live session behind.
func (c *adminClient) logout(ctx context.Context) error {
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
