package provincetest_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/internal/childproc"
	"github.com/fieldsync/fieldsync/internal/nginxproc"
	"github.com/fieldsync/fieldsync/internal/testwait"
)

// adminPassword is every city's admin password.
const adminPassword = "province-admin-1"

// exitTimeout bounds the wait for a killed process to be reaped.
const exitTimeout = 10 * time.Second

// process is a child process the test started: a city's fieldsyncd
// (nginx is internal/nginxproc's). It is killed when the test ends, whatever happens.
type process struct {
	name   string
	cmd    *exec.Cmd
	stderr *syncWriter
	exited chan struct{}
	err    error
}

func start(t *testing.T, name string, stdout *lineWatcher, bin string, args ...string) *process {
	t.Helper()
	p := &process{name: name, stderr: &syncWriter{}, exited: make(chan struct{})}
	p.cmd = exec.Command(bin, args...)
	if stdout != nil {
		p.cmd.Stdout = stdout
	}
	p.cmd.Stderr = p.stderr
	p.cmd.WaitDelay = 5 * time.Second
	childproc.DieWithParent(p.cmd)
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		select {
		case <-p.exited:
		case <-time.After(exitTimeout):
			t.Errorf("%s (pid %d) did not exit after SIGKILL", name, p.cmd.Process.Pid)
		}
	})
	return p
}

// kill sends SIGKILL and waits until the process is gone.
func (p *process) kill(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatalf("kill %s: %v", p.name, err)
	}
	select {
	case <-p.exited:
	case <-time.After(exitTimeout):
		t.Fatalf("%s did not exit after SIGKILL", p.name)
	}
}

// city is one city's fieldsyncd, served under /Code.
type city struct {
	code, name string
	proc       *process
	// upstream is its HOST:PORT, for the proxy.
	upstream string
}

// startCity makes a store for the city and serves it under /code on a
// free loopback port, trusting the proxy on loopback for client
// addresses.
func startCity(t *testing.T, bin, code, name string) *city {
	t.Helper()
	data := filepath.Join(t.TempDir(), "data-"+code)
	pw := filepath.Join(t.TempDir(), "admin-password")
	if err := os.WriteFile(pw, []byte(adminPassword+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.CommandContext(t.Context(), bin, "init", "--data", data, "--root-unit", code, name, "--admin-password-file", pw).CombinedOutput(); err != nil {
		t.Fatalf("fieldsyncd init %s: %v\n%s", code, err, out)
	}
	lines := &lineWatcher{}
	p := start(t, "fieldsyncd "+code, lines, bin, "serve", "--data", data, "--addr", "127.0.0.1:0", "--base-path", "/"+code,
		"--trusted-proxies", "127.0.0.1", "--log-level", "error")
	var url string
	testwait.Until(t, "fieldsyncd "+code+" to print its address", func() bool {
		select {
		case <-p.exited:
			t.Fatalf("fieldsyncd %s exited: %v\n%s", code, p.err, p.stderr)
		default:
		}
		var ok bool
		url, ok = lines.after("listening on ")
		return ok
	})
	hostPort, ok := strings.CutSuffix(strings.TrimPrefix(url, "http://"), "/"+code)
	if !ok || !strings.HasPrefix(hostPort, "127.0.0.1:") {
		t.Fatalf("fieldsyncd %s listens on %s, want http://127.0.0.1:PORT/%s", code, url, code)
	}
	return &city{code: code, name: name, proc: p, upstream: hostPort}
}

// startNginx writes the cities file, has fieldsyncd make the nginx
// configuration of the cities, and runs nginx on it without root, in the
// foreground, on a free loopback port. It returns the province's address.
func startNginx(t *testing.T, nginx, bin string, cities ...*city) string {
	t.Helper()
	dir := t.TempDir()
	var list strings.Builder
	list.WriteString("# the cities of the test province\n")
	for _, c := range cities {
		fmt.Fprintf(&list, "%s %s %s\n", c.code, c.name, c.upstream)
	}
	citiesFile := filepath.Join(dir, "cities.txt")
	if err := os.WriteFile(citiesFile, []byte(list.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	addr, err := nginxproc.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	conf, err := exec.CommandContext(t.Context(), bin, "province", "nginx-config", "--cities", citiesFile, "--listen", addr, "--standalone", dir).Output()
	if err != nil {
		t.Fatalf("fieldsyncd province nginx-config: %v", err)
	}
	n, err := nginxproc.Start(t.Context(), nginx, dir, addr, conf)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := n.Close(); err != nil {
			t.Error(err)
		}
	})
	return n.URL
}

// lineWatcher keeps what a child prints on stdout, for its address line.
type lineWatcher struct {
	syncWriter
}

func (w *lineWatcher) after(prefix string) (string, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.b == nil {
		return "", false
	}
	for _, line := range strings.Split(w.b.String(), "\n") {
		if rest, ok := strings.CutPrefix(line, prefix); ok {
			return strings.TrimSpace(rest), true
		}
	}
	return "", false
}

// ctx is the context of one request of the test.
func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(t.Context(), time.Minute)
	t.Cleanup(cancel)
	return c
}
