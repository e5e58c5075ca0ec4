package httpapi

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync/atomic"
	"time"

	"golang.org/x/net/netutil"
)

// Defaults of ListenConfig: generous for phones on slow links, short enough
// that a stalled client does not hold a connection for long.
const (
	DefaultReadHeaderTimeout = 10 * time.Second
	DefaultReadTimeout       = 60 * time.Second
	DefaultWriteTimeout      = 60 * time.Second
	DefaultIdleTimeout       = 120 * time.Second
)

// ListenConfig tunes how Open listens. The zero value serves plain HTTP with
// the default timeouts and no connection cap.
type ListenConfig struct {
	// CertFile and KeyFile, both PEM, make the server speak TLS (HTTP/2 and
	// HTTP/1.1). ReloadCertificate reads them again.
	CertFile, KeyFile string
	// ReadHeaderTimeout bounds reading a request's headers, ReadTimeout the
	// whole request, WriteTimeout writing the response (a handler that
	// streams a large body extends its own deadline with
	// http.ResponseController), IdleTimeout a kept-alive connection waiting
	// for its next request.
	ReadHeaderTimeout, ReadTimeout, WriteTimeout, IdleTimeout time.Duration
	// MaxConns caps the open connections; the next one waits in the
	// kernel's queue until one closes. 0 means no cap.
	MaxConns int
}

func (l *ListenConfig) setDefaults() {
	if l.ReadHeaderTimeout <= 0 {
		l.ReadHeaderTimeout = DefaultReadHeaderTimeout
	}
	if l.ReadTimeout <= 0 {
		l.ReadTimeout = DefaultReadTimeout
	}
	if l.WriteTimeout <= 0 {
		l.WriteTimeout = DefaultWriteTimeout
	}
	if l.IdleTimeout <= 0 {
		l.IdleTimeout = DefaultIdleTimeout
	}
}

// TLS reports whether the configuration asks for TLS.
func (l *ListenConfig) TLS() bool { return l.CertFile != "" || l.KeyFile != "" }

// listen opens the TCP listener, capped when MaxConns is set. The cap counts
// TCP connections, so it sits under TLS: a handshake in progress holds a
// place too.
func (l *ListenConfig) listen(addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	if l.MaxConns > 0 {
		ln = netutil.LimitListener(ln, l.MaxConns)
	}
	return ln, nil
}

// certificate holds the served TLS certificate and swaps it on reload, so
// a renewed certificate takes effect without dropping a connection.
type certificate struct {
	certFile, keyFile string
	current           atomic.Pointer[tls.Certificate]
}

func loadCertificate(certFile, keyFile string) (*certificate, error) {
	if certFile == "" || keyFile == "" {
		return nil, errors.New("TLS needs both a certificate file and a key file")
	}
	c := &certificate{certFile: certFile, keyFile: keyFile}
	if err := c.reload(); err != nil {
		return nil, err
	}
	return c, nil
}

// reload reads the files again. On failure the current certificate stays.
// The error names the files, never their contents.
func (c *certificate) reload() error {
	cert, err := LoadCertificate(c.certFile, c.keyFile)
	if err != nil {
		return err
	}
	c.current.Store(&cert)
	return nil
}

func (c *certificate) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return c.current.Load(), nil
}

// LoadCertificate reads a PEM certificate chain and its private key, as
// Open does: for checking them before anything starts.
func LoadCertificate(certFile, keyFile string) (tls.Certificate, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("load TLS certificate %s with key %s: %w", certFile, keyFile, err)
	}
	return cert, nil
}

func (c *certificate) tlsConfig() *tls.Config {
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: c.get,
		// net/http's own HTTP/2 answers "h2"; browsers and the SDK's
		// client fall back to HTTP/1.1.
		NextProtos: []string{"h2", "http/1.1"},
	}
}

// ReloadCertificate reads the TLS certificate and key files again and
// serves the new certificate to new connections. On failure the old one
// stays in use and the error says why (without the files' contents).
func (s *Server) ReloadCertificate() error {
	if s.cert == nil {
		return errors.New("the server does not serve TLS")
	}
	return s.cert.reload()
}

// Certificate is the certificate being served, nil without TLS.
func (s *Server) Certificate() *tls.Certificate {
	if s.cert == nil {
		return nil
	}
	return s.cert.current.Load()
}
