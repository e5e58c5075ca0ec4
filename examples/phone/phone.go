package main

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	clientsdk "github.com/fieldsync/fieldsync/client-sdk"
	"github.com/fieldsync/fieldsync/client-sdk/remote"
)

const defaultServer = "http://127.0.0.1:8080"

// errOffline is what every command that would use the network says while
// the offline switch is on.
var errOffline = errors.New("offline mode is on: not touching the network (run `phone offline off` first)")

// settings are the phone's own, kept beside the SDK's store.
type settings struct {
	Server  string `json:"server"`
	Offline bool   `json:"offline"`
}

// phone is one run of the program against one folder.
type phone struct {
	dir      string
	settings settings
	sdk      *clientsdk.Client
	stdout   io.Writer
	stderr   io.Writer
	password string
}

// openPhone reads the folder's settings and, when withSDK, opens the SDK.
// server, when set, overrides the saved server for this run.
func openPhone(dir, server string, withSDK bool) (*phone, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	p := &phone{dir: dir}
	b, err := os.ReadFile(p.settingsPath())
	switch {
	case err == nil:
		if err := json.Unmarshal(b, &p.settings); err != nil {
			return nil, fmt.Errorf("read %s: %w", p.settingsPath(), err)
		}
	case !errors.Is(err, os.ErrNotExist):
		return nil, err
	}
	if server != "" {
		p.settings.Server = server
	}
	if p.settings.Server == "" {
		p.settings.Server = defaultServer
	}
	// One address, or a cluster's several, comma-separated.
	servers, err := remote.SplitAddresses(p.settings.Server)
	if err != nil {
		return nil, fmt.Errorf("-server: %w", err)
	}
	p.settings.Server = strings.Join(servers, ",")
	if !withSDK {
		return p, nil
	}
	key, err := demoKey(filepath.Join(dir, "demo.key"))
	if err != nil {
		return nil, err
	}
	host, _ := os.Hostname()
	opts := clientsdk.Options{
		ServerURLs: servers, DeviceName: "phone example on " + host, Platform: runtime.GOOS + " cli", Key: key,
		HTTPClient: &http.Client{Timeout: 30 * time.Second},
		// A person at a terminal waits a few seconds, not minutes.
		Retry: clientsdk.RetryPolicy{Initial: 250 * time.Millisecond, Max: 4 * time.Second, Attempts: 3},
	}
	if p.settings.Offline {
		// Belt and braces: no command asks for the network while offline,
		// and the transport refuses if one ever does.
		opts.HTTPClient = &http.Client{Transport: offlineTransport{}}
	}
	if p.sdk, err = clientsdk.Open(filepath.Join(dir, "sdk"), opts); err != nil {
		return nil, err
	}
	return p, nil
}

func (p *phone) close() {
	if p.sdk != nil {
		p.sdk.Close()
	}
}

func (p *phone) settingsPath() string { return filepath.Join(p.dir, "phone.json") }

func (p *phone) saveSettings() error {
	b, err := json.MarshalIndent(p.settings, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(p.settingsPath(), append(b, '\n'), 0o600)
}

// online fails while the offline switch is on.
func (p *phone) online() error {
	if p.settings.Offline {
		return errOffline
	}
	return nil
}

type offlineTransport struct{}

func (offlineTransport) RoundTrip(*http.Request) (*http.Response, error) { return nil, errOffline }

// demoKey reads the store's key from path, making it on first use.
//
// DEMO ONLY. A key in a file beside the data it seals protects nothing: a
// real app creates the 32 bytes once and keeps them in the platform
// keystore (Android Keystore, iOS Keychain), never on disk in the clear.
func demoKey(path string) ([]byte, error) {
	key, err := os.ReadFile(path)
	if err == nil {
		if len(key) != 32 {
			return nil, fmt.Errorf("%s is not a 32-byte key", path)
		}
		return key, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	key = make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	if err := os.WriteFile(path, key, 0o600); err != nil {
		return nil, err
	}
	return key, nil
}

// warningID resolves a warning id or unique prefix of one on this phone.
func (p *phone) warningID(arg string) (string, error) {
	var ids []string
	for _, w := range p.sdk.Warnings(clientsdk.Filter{}) {
		ids = append(ids, w.ID)
	}
	return resolve("warning", arg, ids)
}

// rejectedOpID resolves a rejected op's id or unique prefix.
func (p *phone) rejectedOpID(arg string) (string, error) {
	var ids []string
	for _, o := range p.sdk.Rejected() {
		ids = append(ids, o.OpID)
	}
	return resolve("rejected op", arg, ids)
}

func resolve(what, arg string, ids []string) (string, error) {
	arg = strings.ToLower(strings.TrimSpace(arg))
	if arg == "" {
		return "", fmt.Errorf("no %s id given", what)
	}
	var found []string
	for _, id := range ids {
		if id == arg {
			return id, nil
		}
		if strings.HasPrefix(id, arg) {
			found = append(found, id)
		}
	}
	switch len(found) {
	case 0:
		return "", fmt.Errorf("no %s on this phone starts with %q", what, arg)
	case 1:
		return found[0], nil
	}
	short := shortIDs(found)
	shown := make([]string, 0, 5)
	for _, id := range found[:min(len(found), 5)] {
		shown = append(shown, short[id])
	}
	return "", fmt.Errorf("%q is ambiguous: %d %ss start with it (%s...)", arg, len(found), what, strings.Join(shown, ", "))
}

// shortIDs gives each id its shortest prefix no other id shares, at least
// 8 characters. Server ids are UUIDv7, whose first characters are a time:
// those made in one import share a long prefix, so the length varies.
func shortIDs(ids []string) map[string]string {
	sorted := slices.Clone(ids)
	slices.Sort(sorted)
	sorted = slices.Compact(sorted)
	out := make(map[string]string, len(sorted))
	for i, id := range sorted {
		n := 8
		if i > 0 {
			n = max(n, commonPrefix(id, sorted[i-1])+1)
		}
		if i+1 < len(sorted) {
			n = max(n, commonPrefix(id, sorted[i+1])+1)
		}
		out[id] = id[:min(n, len(id))]
	}
	return out
}

func commonPrefix(a, b string) int {
	n := 0
	for n < len(a) && n < len(b) && a[n] == b[n] {
		n++
	}
	return n
}
