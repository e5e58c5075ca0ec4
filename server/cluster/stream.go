package cluster

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// The node-to-node port. Like Nomad's and Consul's RPC port, one TCP
// listener carries several kinds of connection, told apart by a byte the
// dialer sends first; unlike theirs, every connection first proves that
// both ends hold the cluster secret, so the port serves no one else:
//
//	dialer -> magic "FSC1", a 32-byte nonce c
//	server -> a 32-byte nonce s, HMAC-SHA256(secret, "server" c s)
//	dialer -> HMAC-SHA256(secret, "client" c s), the connection's kind
//
// Each side checks the other's MAC before it sends anything else; a wrong
// one closes the connection. The secret itself never crosses the wire.
// Nothing is encrypted: the cluster's network is the city's own, like its
// disks (docs/CLUSTER.md says what mutual TLS would add).

const (
	magic = "FSC1"
	// kindRaft carries raft's RPCs (the transport's pool of connections);
	// kindForward one write forwarded to the leader (forward.go);
	// kindControl (control.go) one operator's command; kindPhotoPut and
	// kindPhotoFetch (photos.go) one photo's file to or from a peer.
	kindRaft    byte = 'R'
	kindForward byte = 'F'
	// handshakeTimeout bounds the handshake: a peer that stalls in it is
	// dropped.
	handshakeTimeout = 5 * time.Second
)

// errHandshake is a connection whose other end does not hold the secret.
var errHandshake = errors.New("cluster handshake failed: the other end does not hold this cluster's secret")

func mac(secret []byte, side string, c, s []byte) []byte {
	h := hmac.New(sha256.New, secret)
	h.Write([]byte(side))
	h.Write(c)
	h.Write(s)
	return h.Sum(nil)
}

// dialAuth connects to addr, proves the secret, and says what the
// connection is for.
func dialAuth(addr string, secret []byte, kind byte, timeout time.Duration) (net.Conn, error) {
	conn, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return nil, err
	}
	if err := clientHandshake(conn, secret, kind); err != nil {
		conn.Close()
		return nil, fmt.Errorf("%s: %w", addr, err)
	}
	return conn, nil
}

func clientHandshake(conn net.Conn, secret []byte, kind byte) error {
	_ = conn.SetDeadline(time.Now().Add(handshakeTimeout))
	defer func() { _ = conn.SetDeadline(time.Time{}) }()
	c := make([]byte, 32)
	if _, err := rand.Read(c); err != nil {
		return err
	}
	if _, err := conn.Write(append([]byte(magic), c...)); err != nil {
		return err
	}
	reply := make([]byte, 64)
	if _, err := io.ReadFull(conn, reply); err != nil {
		return fmt.Errorf("cluster handshake: %w", err)
	}
	s := reply[:32]
	if !hmac.Equal(reply[32:], mac(secret, "server", c, s)) {
		return errHandshake
	}
	_, err := conn.Write(append(mac(secret, "client", c, s), kind))
	return err
}

// serverHandshake checks a dialer's proof and returns the connection's
// kind.
func serverHandshake(conn net.Conn, secret []byte) (byte, error) {
	_ = conn.SetDeadline(time.Now().Add(handshakeTimeout))
	defer func() { _ = conn.SetDeadline(time.Time{}) }()
	hello := make([]byte, len(magic)+32)
	if _, err := io.ReadFull(conn, hello); err != nil {
		return 0, err
	}
	if !bytes.Equal(hello[:len(magic)], []byte(magic)) {
		return 0, errHandshake
	}
	c := hello[len(magic):]
	s := make([]byte, 32)
	if _, err := rand.Read(s); err != nil {
		return 0, err
	}
	if _, err := conn.Write(append(s, mac(secret, "server", c, s)...)); err != nil {
		return 0, err
	}
	proof := make([]byte, 33)
	if _, err := io.ReadFull(conn, proof); err != nil {
		return 0, err
	}
	if !hmac.Equal(proof[:32], mac(secret, "client", c, s)) {
		return 0, errHandshake
	}
	return proof[32], nil
}

// streamLayer is raft's StreamLayer on the authenticated port: Accept
// hands raft the connections of kind raft; forwarded writes go to
// onForward.
type streamLayer struct {
	ln        net.Listener
	secret    []byte
	log       *slog.Logger
	raftConns chan net.Conn
	onForward func(net.Conn)
	onControl func(net.Conn)
	// onPhotoPut and onPhotoFetch serve a photo's file sent or asked for.
	onPhotoPut   func(net.Conn)
	onPhotoFetch func(net.Conn)
	closed       chan struct{}
	closeOnce    sync.Once
	wg           sync.WaitGroup
}

var _ raft.StreamLayer = (*streamLayer)(nil)

func newStreamLayer(ln net.Listener, secret []byte, log *slog.Logger) *streamLayer {
	l := &streamLayer{ln: ln, secret: secret, log: log, raftConns: make(chan net.Conn), closed: make(chan struct{})}
	l.wg.Add(1)
	go l.serve()
	return l
}

// serve accepts connections and runs each one's handshake on its own
// goroutine, so a peer that stalls holds up no other.
func (l *streamLayer) serve() {
	defer l.wg.Done()
	for {
		conn, err := l.ln.Accept()
		if err != nil {
			select {
			case <-l.closed:
				return
			default:
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			l.log.Error("cluster port: accept failed", "err", err)
			return
		}
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			l.route(conn)
		}()
	}
}

func (l *streamLayer) route(conn net.Conn) {
	kind, err := serverHandshake(conn, l.secret)
	if err != nil {
		// The address only: it is a machine of the city's network.
		l.log.Warn("cluster port: refused a connection", "remote", conn.RemoteAddr().String(), "err", err)
		conn.Close()
		return
	}
	switch kind {
	case kindRaft:
		select {
		case l.raftConns <- conn:
		case <-l.closed:
			conn.Close()
		}
	case kindForward:
		if l.onForward == nil {
			conn.Close()
			return
		}
		l.onForward(conn)
	case kindControl:
		if l.onControl == nil {
			conn.Close()
			return
		}
		l.onControl(conn)
	case kindPhotoPut:
		if l.onPhotoPut == nil {
			conn.Close()
			return
		}
		l.onPhotoPut(conn)
	case kindPhotoFetch:
		if l.onPhotoFetch == nil {
			conn.Close()
			return
		}
		l.onPhotoFetch(conn)
	default:
		conn.Close()
	}
}

// Accept returns the next authenticated raft connection.
func (l *streamLayer) Accept() (net.Conn, error) {
	select {
	case conn := <-l.raftConns:
		return conn, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

// Close stops the port; connections already handed out are their
// owners' to close.
func (l *streamLayer) Close() error {
	var err error
	l.closeOnce.Do(func() {
		close(l.closed)
		err = l.ln.Close()
	})
	return err
}

// wait returns once every goroutine of the port has ended.
func (l *streamLayer) wait() { l.wg.Wait() }

// Addr is the port's address.
func (l *streamLayer) Addr() net.Addr { return l.ln.Addr() }

// Dial opens an authenticated raft connection to a peer.
func (l *streamLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	return dialAuth(string(address), l.secret, kindRaft, timeout)
}
