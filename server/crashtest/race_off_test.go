//go:build !race

package crashtest_test

// raceBuild: see race_on_test.go.
const raceBuild = false
