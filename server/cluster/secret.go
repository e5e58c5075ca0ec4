package cluster

import (
	"bytes"
	"fmt"
	"os"
)

// MinSecret is the fewest bytes a cluster secret may have.
const MinSecret = 32

// LoadSecret reads the cluster secret from a file (surrounding white
// space dropped): every node of a cluster has the same one, made once with
// e.g. `head -c 32 /dev/urandom | base64 > cluster.secret`.
func LoadSecret(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cluster secret: %w", err)
	}
	b = bytes.TrimSpace(b)
	if len(b) < MinSecret {
		return nil, fmt.Errorf("cluster secret %s: it has %d bytes, at least %d are needed", path, len(b), MinSecret)
	}
	return b, nil
}
