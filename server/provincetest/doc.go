// Package provincetest holds the test of a province behind one address:
// two cities as separate fieldsyncd processes (each served with
// --base-path /CODE), behind a real nginx configured by
// `fieldsyncd province nginx-config`, driven with the real SDK, the
// protocol and the console. It skips with a one-line reason where nginx
// is not installed (.ci/install-test-deps installs it).
//
// The package has no code of its own; the test is in province_test.go.
package provincetest
