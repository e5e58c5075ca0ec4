// Package machine tells the example programs what they run on, for the
// figures they print: other work on the machine skews every figure.
package machine

import (
	"os"
	"strings"
)

// LoadAverage is the 1-minute load average as /proc/loadavg says, or "?"
// where there is none.
func LoadAverage() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	if f := strings.Fields(string(data)); len(f) > 0 {
		return f[0]
	}
	return "?"
}
