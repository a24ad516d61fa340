package main

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package when a command leaves goroutines behind
// (HTTP transports of harden, recorders of export, etcd clients of
// cluster...).
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
