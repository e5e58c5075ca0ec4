package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// etcdServer is one etcd node, a child process of this program.
type etcdServer struct {
	cmd      *exec.Cmd
	dir      string // temporary: the data directory and etcd's log
	endpoint string // 127.0.0.1:PORT of the client URL
	version  string
	exited   chan struct{} // closed when cmd.Wait returns
}

// startEtcd starts bin as a single node on two free loopback ports with a
// new data directory and its defaults otherwise (the WAL fsynced before
// every answer), and returns once it answers a status request.
func startEtcd(ctx context.Context, bin string, stderr io.Writer) (*etcdServer, error) {
	dir, err := os.MkdirTemp("", "etcdload-")
	if err != nil {
		return nil, fmt.Errorf("etcd data directory: %w", err)
	}
	clientAddr, err := freeAddr()
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	peerAddr, err := freeAddr()
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	logFile, err := os.Create(filepath.Join(dir, "etcd.log"))
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("etcd log: %w", err)
	}
	defer logFile.Close() // the child holds its own descriptor
	clientURL, peerURL := "http://"+clientAddr, "http://"+peerAddr
	cmd := exec.Command(bin,
		"--name", "etcdload",
		"--data-dir", filepath.Join(dir, "data"),
		"--listen-client-urls", clientURL, "--advertise-client-urls", clientURL,
		"--listen-peer-urls", peerURL, "--initial-advertise-peer-urls", peerURL,
		"--initial-cluster", "etcdload="+peerURL, "--initial-cluster-state", "new",
		"--logger", "zap", "--log-level", "warn",
	)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	dieWithParent(cmd)
	if err := cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	s := &etcdServer{cmd: cmd, dir: dir, endpoint: clientAddr, exited: make(chan struct{})}
	go func() { cmd.Wait(); close(s.exited) }()
	if s.version, err = s.waitReady(ctx, 30*time.Second); err != nil {
		fmt.Fprintf(stderr, "etcd's log (last lines):\n%s\n", lastLines(filepath.Join(dir, "etcd.log"), 20))
		s.stop()
		return nil, err
	}
	return s, nil
}

// waitReady asks etcd for its status until it answers, it exits, or
// timeout passes; it returns etcd's version.
func (s *etcdServer) waitReady(ctx context.Context, timeout time.Duration) (string, error) {
	cli, err := s.client()
	if err != nil {
		return "", err
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		askCtx, askCancel := context.WithTimeout(ctx, time.Second)
		st, err := cli.Status(askCtx, s.endpoint)
		askCancel()
		if err == nil {
			return st.Version, nil
		}
		// Polling is what there is: etcd has no readiness signal to a parent.
		select {
		case <-s.exited:
			return "", fmt.Errorf("etcd exited before it answered: %v", s.cmd.ProcessState)
		case <-ctx.Done():
			return "", fmt.Errorf("etcd did not answer within %v: %w", timeout, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// client is a new connection to the node; the client library's own log is
// silenced, since the program reports every error it gets.
func (s *etcdServer) client() (*clientv3.Client, error) {
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   []string{s.endpoint},
		DialTimeout: 5 * time.Second,
		Logger:      zap.NewNop(),
	})
	if err != nil {
		return nil, fmt.Errorf("etcd client: %w", err)
	}
	return cli, nil
}

// stop ends etcd (SIGTERM, then SIGKILL after 10 s) and removes its
// directory.
func (s *etcdServer) stop() {
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(10 * time.Second):
		s.cmd.Process.Kill()
		<-s.exited
	}
	os.RemoveAll(s.dir)
}

// cpu is the CPU etcd has used so far, user and system, from
// /proc/PID/stat.
func (s *etcdServer) cpu() (time.Duration, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", s.cmd.Process.Pid))
	if err != nil {
		return 0, fmt.Errorf("etcd's CPU: %w", err)
	}
	// The command name (field 2) may hold spaces; the fields after it
	// start with the state (field 3), so utime (14) and stime (15) are
	// the 12th and 13th.
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return 0, errors.New("etcd's CPU: unexpected /proc/PID/stat")
	}
	f := strings.Fields(string(data[i+1:]))
	if len(f) < 13 {
		return 0, errors.New("etcd's CPU: unexpected /proc/PID/stat")
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("etcd's CPU: %w", err)
	}
	// Clock ticks are 1/100 s on Linux (USER_HZ), whatever the kernel's HZ.
	return time.Duration(utime+stime) * 10 * time.Millisecond, nil
}

// metrics reads the counts of etcd's WAL fsyncs and backend commits from
// its /metrics page, to show how many transactions share one fsync.
func (s *etcdServer) metrics(ctx context.Context) (walFsyncs, backendCommits int64, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+s.endpoint+"/metrics", nil)
	if err != nil {
		return 0, 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, 0, fmt.Errorf("etcd metrics: %w", err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		switch name {
		case "etcd_disk_wal_fsync_duration_seconds_count":
			walFsyncs, _ = strconv.ParseInt(value, 10, 64)
		case "etcd_disk_backend_commit_duration_seconds_count":
			backendCommits, _ = strconv.ParseInt(value, 10, 64)
		}
	}
	if err := sc.Err(); err != nil {
		return 0, 0, fmt.Errorf("etcd metrics: %w", err)
	}
	return walFsyncs, backendCommits, nil
}

// freeAddr is a 127.0.0.1 address with a port nothing listened on a moment
// ago. etcd cannot be told to pick its own and report it, so a port may
// rarely be taken in between; the start then fails and says so.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// lastLines is the end of a log file, for an error message.
func lastLines(path string, n int) string {
	data, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
