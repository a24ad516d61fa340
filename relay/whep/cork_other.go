//go:build !linux

package whep

import "net"

func gsoControl(oob *[32]byte, _ int) []byte { return oob[:0] }
func gsoRefused(error) bool                  { return true }
func gsoSupported(*net.UDPConn) bool         { return false }
