// Package udppair finds a free even/odd UDP port pair, as RTSP over UDP
// needs (RTP on the even port, RTCP on the next). Nothing can reserve a
// pair for later, so callers bind it at once and retry on EADDRINUSE
// (Retry). It lives in internal/ because the RTSP re-serve and the
// synthetic cameras both need it.
package udppair

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"syscall"
)

// Free returns an even port p on host with p and p+1 free for UDP now.
func Free(host string) (int, error) {
	for range 100 {
		l1, err := net.ListenPacket("udp", net.JoinHostPort(host, "0"))
		if err != nil {
			return 0, fmt.Errorf("UDP on %s: %w", host, err)
		}
		p := l1.LocalAddr().(*net.UDPAddr).Port
		if p%2 != 0 || p > 65000 {
			_ = l1.Close()
			continue
		}
		l2, err := net.ListenPacket("udp", net.JoinHostPort(host, strconv.Itoa(p+1)))
		_ = l1.Close()
		if err != nil {
			continue
		}
		_ = l2.Close()
		return p, nil
	}
	return 0, fmt.Errorf("no free UDP port pair on %s", host)
}

// Retry calls bind with free pairs on host until it succeeds, fails with
// another error than "address in use" (another process took the pair in
// between), or tries runs out.
func Retry(host string, tries int, bind func(rtp int) error) error {
	for try := 0; ; try++ {
		p, err := Free(host)
		if err != nil {
			return err
		}
		err = bind(p)
		if err == nil || !errors.Is(err, syscall.EADDRINUSE) || try >= tries {
			return err
		}
	}
}
