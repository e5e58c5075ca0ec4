package servertest

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/internal/childproc"
)

// ChildExitTimeout bounds the wait for a child process to end once it was
// signalled.
const ChildExitTimeout = 20 * time.Second

// Child is a fieldsyncd child process of a test (BuildFieldsyncd builds
// the binary): the crash tests kill it, the cluster tests run three.
type Child struct {
	cmd    *exec.Cmd
	stderr string // path of its stderr
	urls   chan string
	exited chan struct{}
	err    error // Wait's answer, set before exited is closed
}

// StartChild starts bin with args, its stderr written to the file
// stderr, and reads its stdout for the "listening on URL" line (WaitURL).
// The process is killed when the test ends, whatever happens, and by the
// kernel if the test binary dies first.
func StartChild(t testing.TB, bin string, args []string, stderr string) *Child {
	t.Helper()
	c := &Child{stderr: stderr, urls: make(chan string, 1), exited: make(chan struct{})}
	errFile, err := os.Create(stderr)
	if err != nil {
		t.Fatal(err)
	}
	c.cmd = exec.Command(bin, args...)
	c.cmd.Stdout = ListenWriter(c.urls)
	c.cmd.Stderr = errFile
	c.cmd.WaitDelay = 5 * time.Second
	childproc.DieWithParent(c.cmd)
	err = c.cmd.Start()
	errFile.Close()
	if err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	go func() {
		c.err = c.cmd.Wait()
		close(c.exited)
	}()
	t.Cleanup(func() {
		_ = c.cmd.Process.Kill()
		select {
		case <-c.exited:
		case <-time.After(ChildExitTimeout):
			t.Errorf("fieldsyncd (pid %d) did not exit after SIGKILL", c.cmd.Process.Pid)
		}
	})
	return c
}

// WaitURL waits for the child's "listening on" line and returns its
// address, which must be on 127.0.0.1.
func (c *Child) WaitURL(timeout time.Duration) (string, error) {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case url := <-c.urls:
		if !strings.HasPrefix(url, "http://127.0.0.1:") {
			return "", fmt.Errorf("fieldsyncd listens on %s, want 127.0.0.1", url)
		}
		return url, nil
	case <-c.exited:
		return "", fmt.Errorf("fieldsyncd exited before listening: %v", c.err)
	case <-timer.C:
		return "", fmt.Errorf("fieldsyncd did not print its address in %s", timeout)
	}
}

// Kill sends SIGKILL and waits for the process; it fails when the process
// had already ended by itself.
func (c *Child) Kill() error {
	if err := c.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("kill fieldsyncd: %w", err)
	}
	select {
	case <-c.exited:
	case <-time.After(ChildExitTimeout):
		return fmt.Errorf("fieldsyncd (pid %d) did not exit %s after SIGKILL", c.cmd.Process.Pid, ChildExitTimeout)
	}
	var ee *exec.ExitError
	if errors.As(c.err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL {
			return nil
		}
	}
	return fmt.Errorf("fieldsyncd ended by itself before the kill: %v", c.err)
}

// Stop sends SIGTERM and expects a clean exit after the drain.
func (c *Child) Stop() error {
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return fmt.Errorf("SIGTERM: %w", err)
	}
	select {
	case <-c.exited:
	case <-time.After(ChildExitTimeout):
		_ = c.cmd.Process.Kill()
		<-c.exited
		return fmt.Errorf("fieldsyncd did not exit %s after SIGTERM", ChildExitTimeout)
	}
	if c.err != nil {
		return fmt.Errorf("fieldsyncd after SIGTERM: %w", c.err)
	}
	return nil
}

// StderrTail is the end of what the child wrote on stderr, for a failure.
func (c *Child) StderrTail() string {
	b, err := os.ReadFile(c.stderr)
	if err != nil {
		return err.Error()
	}
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// StderrHas reports whether the child's stderr holds s.
func (c *Child) StderrHas(s string) bool {
	b, err := os.ReadFile(c.stderr)
	return err == nil && strings.Contains(string(b), s)
}

// StderrPath is the file the child's stderr goes to.
func (c *Child) StderrPath() string { return c.stderr }

// ListenWriter is a fieldsyncd child's stdout: it sends the address of
// its "listening on" line to urls, once, and drops the rest.
func ListenWriter(urls chan<- string) io.Writer { return &listenWriter{urls: urls} }

type listenWriter struct {
	urls chan<- string
	line []byte
	sent bool
}

func (w *listenWriter) Write(p []byte) (int, error) {
	for _, b := range p {
		if b != '\n' {
			if len(w.line) < 4096 {
				w.line = append(w.line, b)
			}
			continue
		}
		if url, ok := strings.CutPrefix(strings.TrimSpace(string(w.line)), "listening on "); ok && !w.sent {
			w.sent = true
			w.urls <- url
		}
		w.line = w.line[:0]
	}
	return len(p), nil
}
