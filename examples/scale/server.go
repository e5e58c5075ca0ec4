package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/fieldsync/fieldsync/internal/childproc"
	"github.com/fieldsync/fieldsync/server/servertest"
	"github.com/fieldsync/fieldsync/server/store"
)

// serverWait bounds the server's start (opening a 5 GB store) and its
// stop.
const serverWait = 2 * time.Minute

// server is the fieldsyncd child.
type server struct {
	cmd       *exec.Cmd
	url       string
	storeFile string
	stderr    string
	exited    chan struct{}
}

// serverConfig is the child's configuration: loopback, a port it picks,
// and the request limits off, since the program's phones each sign in and
// sync far faster than a real one and one address stands for all of them.
// fsync stays on, as in production.
const serverConfig = `# written by examples/scale
data = %s
addr = 127.0.0.1:0
log-level = warn
access-ttl = 2h
device-rate = -1
ip-rate = -1
lockout-threshold = -1
`

// startServer runs `bin serve` on storeDir with env added to its
// environment and waits until it listens.
func startServer(ctx context.Context, bin, storeDir string, env []string) (*server, error) {
	dir := filepath.Dir(storeDir)
	conf := filepath.Join(dir, "fieldsyncd.conf")
	if err := os.WriteFile(conf, fmt.Appendf(nil, serverConfig, storeDir), 0o600); err != nil {
		return nil, err
	}
	s := &server{storeFile: filepath.Join(storeDir, store.DBFile), stderr: filepath.Join(dir, "fieldsyncd.stderr"), exited: make(chan struct{})}
	errFile, err := os.Create(s.stderr)
	if err != nil {
		return nil, err
	}
	defer errFile.Close()
	urls := make(chan string, 1)
	s.cmd = exec.Command(bin, "serve", "--config", conf)
	s.cmd.Env = append(os.Environ(), env...)
	s.cmd.Stdout, s.cmd.Stderr = servertest.ListenWriter(urls), errFile
	s.cmd.WaitDelay = 5 * time.Second
	childproc.DieWithParent(s.cmd)
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start fieldsyncd: %w", err)
	}
	go func() { _ = s.cmd.Wait(); close(s.exited) }()
	select {
	case u := <-urls:
		if !strings.HasPrefix(u, "http://127.0.0.1:") {
			s.kill()
			return nil, fmt.Errorf("fieldsyncd listens on %s, want 127.0.0.1", u)
		}
		s.url = u
		return s, nil
	case <-s.exited:
		return nil, fmt.Errorf("fieldsyncd exited before listening; its stderr: %s", s.tail())
	case <-ctx.Done():
		s.kill()
		return nil, ctx.Err()
	case <-time.After(serverWait):
		s.kill()
		return nil, fmt.Errorf("fieldsyncd did not listen within %v", serverWait)
	}
}

func (s *server) pid() int { return s.cmd.Process.Pid }

// stop asks the server to drain (SIGTERM) and kills it if it does not end.
func (s *server) stop(stderr io.Writer) {
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		fmt.Fprintf(stderr, "scale: stop fieldsyncd: %v\n", err)
	}
	select {
	case <-s.exited:
	case <-time.After(serverWait):
		fmt.Fprintf(stderr, "scale: fieldsyncd did not stop within %v; killed\n", serverWait)
		s.kill()
	}
}

func (s *server) kill() {
	_ = s.cmd.Process.Kill()
	<-s.exited
}

// tail is the end of the server's stderr, for an error.
func (s *server) tail() string {
	data, _ := os.ReadFile(s.stderr)
	if len(data) > 2000 {
		data = data[len(data)-2000:]
	}
	return string(data)
}
