//go:build race

package servertest

// raceBuild is whether this binary has the race detector (BuildFieldsyncd).
const raceBuild = true
