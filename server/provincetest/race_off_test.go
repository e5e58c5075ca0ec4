//go:build !race

package provincetest_test

// raceBuild: see race_on_test.go.
const raceBuild = false
