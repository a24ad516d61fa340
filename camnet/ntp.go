package camnet

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	"cordon/internal/ratelimit"
)

// NTP defaults. cordon serves the gateway's own clock. The gateway itself
// normally follows an upstream NTP server on the operator side (chrony or
// systemd-timesyncd; `cordon doctor` checks it is synchronised), which is
// typically stratum 2, so cordon claims stratum 3 by default. The reference
// id is "LOCL": there is no upstream address worth disclosing to cameras.
const (
	DefaultNTPStratum = 3
	DefaultNTPRefID   = "LOCL"
	DefaultNTPRate    = 2 // requests per second per source address
	DefaultNTPBurst   = 8
	ntpPacketLen      = 48
	ntpEpochOffset    = 2208988800 // seconds from 1900-01-01 to 1970-01-01
)

// NTPServer is an SNTP v4 (RFC 4330) server for the camera network, from
// the gateway's clock. It answers client (mode 3) requests with server
// (mode 4) replies, echoing the client's version (1-4) and transmit
// timestamp, and ignores every other mode (no symmetric, broadcast, control
// or private mode-7 "monlist" answers), short packets, and sources over
// their rate.
type NTPServer struct {
	// Listen is the UDP address, e.g. "10.20.0.1:123".
	Listen string
	// Logger; nil discards.
	Logger *slog.Logger
	// Metrics; nil means unregistered metrics.
	Metrics *Metrics
	// Now is the clock served; nil means time.Now.
	Now func() time.Time
	// Stratum to claim; 0 = DefaultNTPStratum.
	Stratum uint8
	// RefID is the 4-character reference id; "" = DefaultNTPRefID.
	RefID string
	// Synchronised reports whether the host clock is synchronised; when it
	// returns false replies carry LI=3 (alarm: clock not synchronised) so
	// that SNTP clients may refuse the time. nil = assume synchronised.
	// ClockSynchronised is a suitable implementation.
	Synchronised func() bool
	// Rate and Burst limit requests per source address. 0 = defaults;
	// Rate < 0 disables limiting.
	Rate  float64
	Burst int

	now   func() time.Time
	log   *slog.Logger
	m     *Metrics
	limit *ratelimit.Limiter[netip.Addr]
	conn  *net.UDPConn
	addr  netip.AddrPort
	wg    sync.WaitGroup
	once  sync.Once
}

// Initialize binds Listen and starts serving.
func (n *NTPServer) Initialize() error {
	n.setup()
	if n.Listen == "" {
		return errors.New("camnet: NTP Listen is empty")
	}
	ua, err := net.ResolveUDPAddr("udp", n.Listen)
	if err != nil {
		return fmt.Errorf("camnet: NTP listen %s: %w", n.Listen, err)
	}
	c, err := net.ListenUDP("udp", ua)
	if err != nil {
		return fmt.Errorf("camnet: NTP listen %s: %w", n.Listen, err)
	}
	n.conn = c
	n.addr = c.LocalAddr().(*net.UDPAddr).AddrPort()
	n.wg.Add(1)
	go n.serve()
	n.log.Info("NTP server listening", "addr", n.addr.String(), "stratum", n.Stratum)
	return nil
}

func (n *NTPServer) setup() {
	n.now = n.Now
	if n.now == nil {
		n.now = time.Now
	}
	n.log = n.Logger
	if n.log == nil {
		n.log = slog.New(slog.DiscardHandler)
	}
	n.log = n.log.With("component", "camnet.ntp")
	n.m = n.Metrics
	if n.m == nil {
		n.m = NewMetrics(nil)
	}
	if n.Stratum == 0 {
		n.Stratum = DefaultNTPStratum
	}
	if n.RefID == "" {
		n.RefID = DefaultNTPRefID
	}
	rate, burst := n.Rate, n.Burst
	if rate == 0 {
		rate = DefaultNTPRate
	}
	if burst <= 0 {
		burst = DefaultNTPBurst
	}
	n.limit = ratelimit.New[netip.Addr](rate, burst, 0)
}

// Addr is the bound address. Valid after Initialize.
func (n *NTPServer) Addr() netip.AddrPort { return n.addr }

// Close stops serving and waits for the serving goroutine. Idempotent.
func (n *NTPServer) Close() {
	n.once.Do(func() {
		if n.conn != nil {
			_ = n.conn.Close()
		}
		n.wg.Wait()
	})
}

func (n *NTPServer) serve() {
	defer n.wg.Done()
	buf := make([]byte, 1024)
	for {
		sz, src, err := n.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			n.log.Warn("NTP read failed", "err", err)
			time.Sleep(10 * time.Millisecond)
			continue
		}
		recv := n.now()
		resp := n.reply(buf[:sz], src.Addr().Unmap(), recv)
		if resp == nil {
			continue
		}
		if _, err := n.conn.WriteToUDPAddrPort(resp, src); err != nil {
			n.log.Debug("NTP write failed", "remote", src.String(), "err", err)
		}
	}
}

// reply builds the mode-4 reply to req received at recv, or nil to ignore.
func (n *NTPServer) reply(req []byte, src netip.Addr, recv time.Time) []byte {
	if ok, _ := n.limit.Allow(src, recv); !ok {
		n.m.ntpDropped.WithLabelValues("rate_limit").Inc()
		return nil
	}
	if len(req) < ntpPacketLen {
		n.m.ntpDropped.WithLabelValues("malformed").Inc()
		return nil
	}
	vn := (req[0] >> 3) & 0x07
	mode := req[0] & 0x07
	if mode != 3 || vn < 1 || vn > 4 {
		n.m.ntpDropped.WithLabelValues("not_client").Inc()
		return nil
	}
	li := byte(0)
	if n.Synchronised != nil && !n.Synchronised() {
		li = 3
	}
	out := make([]byte, ntpPacketLen)
	out[0] = li<<6 | vn<<3 | 4
	out[1] = n.Stratum
	out[2] = req[2] // poll: echo the client's
	out[3] = 0xec   // precision: 2^-20 s (about 1 µs)
	// root delay 0; root dispersion 2^-6 s (about 16 ms)
	binary.BigEndian.PutUint32(out[8:12], 1<<10)
	copy(out[12:16], []byte(n.RefID + "\x00\x00\x00\x00")[:4])
	putNTPTime(out[16:24], recv)    // reference timestamp
	copy(out[24:32], req[40:48])    // originate = client's transmit
	putNTPTime(out[32:40], recv)    // receive
	putNTPTime(out[40:48], n.now()) // transmit
	n.m.ntpRequests.Inc()
	return out
}

// putNTPTime writes t as a 64-bit NTP timestamp (era 0 wraps in 2036 as the
// protocol defines).
func putNTPTime(b []byte, t time.Time) {
	secs := uint64(t.Unix() + ntpEpochOffset)
	frac := (uint64(t.Nanosecond()) << 32) / 1e9
	binary.BigEndian.PutUint32(b[0:4], uint32(secs))
	binary.BigEndian.PutUint32(b[4:8], uint32(frac))
}

// ntpTime decodes a 64-bit NTP timestamp (era 0, or era 1 after 2036 when
// the seconds have wrapped, per RFC 4330 section 3).
func ntpTime(b []byte) time.Time {
	secs := int64(binary.BigEndian.Uint32(b[0:4]))
	frac := uint64(binary.BigEndian.Uint32(b[4:8]))
	if secs&0x80000000 == 0 {
		secs += 1 << 32 // era 1 (from 2036-02-07)
	}
	return time.Unix(secs-ntpEpochOffset, int64((frac*1e9)>>32))
}
