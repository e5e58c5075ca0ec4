package provincetest_test

import (
	"bytes"
	"sync"
)

// syncWriter is a buffer a child's output goes to while the test reads it.
type syncWriter struct {
	mu sync.Mutex
	b  *bytes.Buffer
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.b == nil {
		w.b = &bytes.Buffer{}
	}
	return w.b.Write(p)
}

func (w *syncWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.b == nil {
		return ""
	}
	return w.b.String()
}
