// Package testtool is cordon's one test toolkit: it finds the external
// programs the tests drive (ffmpeg, ffprobe, chromium, nft; a missing tool
// skips the test on a developer's machine and fails it in CI=true, so CI
// can never pass by skipping), starts headless chromium (Browser), and
// waits on conditions and channels (WaitFor, Recv) instead of sleeping.
// The browser-like WHEP viewer is internal/whepclient (the load tool uses
// it too); the synthetic camera is democam. It lives in internal/ because
// it serves tests of several packages and is part of none of them.
package testtool

import (
	"os"
	"os/exec"
	"testing"
)

// InCI reports whether the tests run in CI, where nothing may be skipped.
func InCI() bool { return os.Getenv("CI") == "true" }

// Require returns the path of the named program, or skips (fails in CI).
func Require(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		Missing(t, name+" is not installed (run `make deps`)")
	}
	return p
}

// Chromium returns the path of Debian's chromium, or skips (fails in CI).
func Chromium(t testing.TB) string {
	t.Helper()
	for _, p := range []string{"/usr/bin/chromium", "/usr/bin/chromium-browser"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	Missing(t, "chromium is not installed (run `make deps`)")
	return ""
}

// Missing skips the test with why, or fails it in CI.
func Missing(t testing.TB, why string) {
	t.Helper()
	if InCI() {
		t.Fatalf("CI=true and %s", why)
	}
	t.Skip(why)
}
