package nginxproc

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"time"

	"github.com/fieldsync/fieldsync/internal/childproc"
	"github.com/fieldsync/fieldsync/internal/freeport"
)

// Find is the nginx binary, or "" where there is none: Debian puts it in
// /usr/sbin, which a user's PATH may leave out.
func Find() string {
	if p, err := exec.LookPath("nginx"); err == nil {
		return p
	}
	for _, p := range []string{"/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/local/nginx/sbin/nginx"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return ""
}

// Missing is the one line a program or test prints where Find found no
// nginx.
const Missing = "nginx is not installed (apt-get install nginx-light, or .ci/install-test-deps)"

// FreeAddr is a loopback address with a port nothing listens on now, for
// nginx's listen: nginx takes no port 0.
func FreeAddr() (string, error) { return freeport.Addr() }

// Nginx is a running nginx.
type Nginx struct {
	// URL is http://ADDR, the address it listens on.
	URL string
	// Dir holds its configuration, pid, logs and temporary files.
	Dir string

	cmd     *exec.Cmd
	exited  chan struct{}
	err     error
	stderr  lockedBuffer
	closeMu sync.Once
}

// Start runs nginx (the binary bin) on conf, a standalone configuration
// that listens on addr and keeps its files in dir (province.Options'
// Standalone), and returns once it answers at /healthz. It fails with
// nginx's error log if nginx exits first; it waits no fixed time, only
// for ctx.
func Start(ctx context.Context, bin, dir, addr string, conf []byte) (*Nginx, error) {
	confFile := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(confFile, conf, 0o600); err != nil {
		return nil, fmt.Errorf("nginx configuration: %w", err)
	}
	n := &Nginx{URL: "http://" + addr, Dir: dir, exited: make(chan struct{})}
	// One process, no workers: the parent-death signal then ends all of
	// nginx.
	n.cmd = exec.Command(bin, "-p", dir, "-c", confFile, "-e", filepath.Join(dir, "error.log"), "-g", "master_process off;")
	n.cmd.Stderr = &n.stderr
	n.cmd.WaitDelay = 5 * time.Second
	childproc.DieWithParent(n.cmd)
	if err := n.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start nginx: %w", err)
	}
	go func() {
		n.err = n.cmd.Wait()
		close(n.exited)
	}()
	if err := n.waitReady(ctx); err != nil {
		return nil, errors.Join(err, n.Close())
	}
	return n, nil
}

// waitReady polls /healthz until nginx answers it, exits, or ctx ends.
func (n *Nginx) waitReady(ctx context.Context) error {
	hc := &http.Client{Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}
	for {
		select {
		case <-n.exited:
			log, _ := os.ReadFile(filepath.Join(n.Dir, "error.log"))
			return fmt.Errorf("nginx exited: %v\n%s%s", n.err, n.stderr.String(), log)
		case <-ctx.Done():
			return fmt.Errorf("waiting for nginx: %w", ctx.Err())
		case <-time.After(5 * time.Millisecond):
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, n.URL+"/healthz", nil)
		if err != nil {
			return err
		}
		resp, err := hc.Do(req)
		if err != nil {
			continue
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			return nil
		}
	}
}

// Pid is nginx's process id, for its CPU time in /proc.
func (n *Nginx) Pid() int { return n.cmd.Process.Pid }

// Close kills nginx and waits until it is gone; later calls do nothing.
func (n *Nginx) Close() error {
	var err error
	n.closeMu.Do(func() {
		_ = n.cmd.Process.Kill()
		select {
		case <-n.exited:
		case <-time.After(10 * time.Second):
			err = fmt.Errorf("nginx (pid %d) did not exit after SIGKILL", n.cmd.Process.Pid)
		}
	})
	return err
}
