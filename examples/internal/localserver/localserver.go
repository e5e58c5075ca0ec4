// Package localserver starts a fieldsync server inside an example program:
// a real server on 127.0.0.1, in a temporary folder the program's phones
// share, with one HTTP transport for all of them, as examples/cityday,
// examples/twog and examples/load need it.
package localserver

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/fieldsync/fieldsync/server/servertest"
)

// Options says how to start the server and size the transport.
type Options struct {
	// Name begins the temporary folder's name.
	Name string
	// Server is passed on to servertest.Open. Its Dir, when empty, is
	// "server" in the temporary folder.
	Server servertest.Options
	// Conns is how many connections to the server the program keeps busy
	// at once; the transport keeps that many alive.
	Conns int
	// DisableCompression turns off asking for gzip answers.
	DisableCompression bool
}

// Server is the started server and what the program shares with it.
type Server struct {
	*servertest.Server
	// Transport reaches the server and nothing else: it never goes
	// through a proxy, whatever the environment says.
	Transport *http.Transport
	// TempDir is the temporary folder, removed by Close: phones and photos
	// of the program go there.
	TempDir string
}

// Start starts the server and checks that it listens on 127.0.0.1.
func Start(opts Options) (s *Server, err error) {
	s = &Server{}
	if s.TempDir, err = os.MkdirTemp("", opts.Name+"-*"); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, s.Close())
			s = nil
		}
	}()
	if opts.Server.Dir == "" {
		opts.Server.Dir = filepath.Join(s.TempDir, "server")
	}
	if s.Server, err = servertest.Open(opts.Server); err != nil {
		return s, fmt.Errorf("start server: %w", err)
	}
	if u, err := url.Parse(s.URL); err != nil || u.Hostname() != "127.0.0.1" {
		return s, fmt.Errorf("server is at %s, not on 127.0.0.1", s.URL)
	}
	conns := max(opts.Conns, 1)
	s.Transport = &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        2 * conns,
		MaxIdleConnsPerHost: conns,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  opts.DisableCompression,
	}
	return s, nil
}

// Close stops the server and removes the temporary folder.
func (s *Server) Close() error {
	var err error
	if s.Transport != nil {
		s.Transport.CloseIdleConnections()
	}
	if s.Server != nil {
		if cerr := s.Server.Close(); cerr != nil {
			err = fmt.Errorf("close server: %w", cerr)
		}
	}
	return errors.Join(err, os.RemoveAll(s.TempDir))
}
