//go:build race

package provincetest_test

// raceBuild is whether this test binary has the race detector; fieldsyncd
// is built the same way, so its packages come from the build cache the
// test's own build filled, and the cities under the proxy are race-checked too.
const raceBuild = true
