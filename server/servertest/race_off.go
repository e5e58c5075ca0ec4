//go:build !race

package servertest

// raceBuild: see race_on.go.
const raceBuild = false
