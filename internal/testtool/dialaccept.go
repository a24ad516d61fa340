package testtool

import (
	"net"
	"testing"
)

// DialAccepted dials ln's address and returns both ends of the one
// connection: the dialed end and the one ln accepted (ln may wrap the
// listener it was made from, as a connection limiter does). Both are
// closed when the test ends.
func DialAccepted(t testing.TB, ln net.Listener) (dialed, accepted net.Conn) {
	t.Helper()
	acc := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		acc <- c
	}()
	dialed, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	accepted = <-acc
	if accepted == nil {
		dialed.Close()
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { _ = dialed.Close(); _ = accepted.Close() })
	return dialed, accepted
}
