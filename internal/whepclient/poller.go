package whepclient

import (
	"net"
	"net/netip"
	"sync"
	"time"
)

// Poller reads the sockets of light viewers (Options.Light) once their
// first keyframe has arrived: every Interval it drains each socket with
// non-blocking batch reads, counts the RTP, and hands anything else (STUN,
// RTCP) to the viewer's pion reader. A load of hundreds of viewers then
// costs a few system calls per viewer and interval instead of a goroutine
// wake-up per packet. Arrival times are the poll's, so frame gaps are
// measured to within Interval. One Poller serves any number of clients;
// Close it after them. Where the platform has no non-blocking batch reads
// viewers keep reading their own sockets.
type Poller struct {
	interval time.Duration
	mu       sync.Mutex
	conns    []*wireConn
	stop     chan struct{}
	done     chan struct{}
}

// NewPoller starts a poller reading every interval (default 10 ms).
func NewPoller(interval time.Duration) *Poller {
	if interval <= 0 {
		interval = 10 * time.Millisecond
	}
	p := &Poller{interval: interval, stop: make(chan struct{}), done: make(chan struct{})}
	go p.run()
	return p
}

// Close stops the poller; viewers it still read for see their sockets
// closed.
func (p *Poller) Close() {
	close(p.stop)
	<-p.done
}

func (p *Poller) add(c *wireConn) bool {
	if !canPoll {
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.stop:
		return false
	default:
	}
	p.conns = append(p.conns, c)
	return true
}

func (p *Poller) run() {
	defer close(p.done)
	t := time.NewTicker(p.interval)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			p.mu.Lock()
			for _, c := range p.conns {
				close(c.polled)
			}
			p.conns = nil
			p.mu.Unlock()
			return
		case <-t.C:
		}
		p.mu.Lock()
		conns := p.conns
		p.mu.Unlock()
		var gone []*wireConn
		for _, c := range conns {
			if !c.drain() {
				gone = append(gone, c)
			}
		}
		if len(gone) > 0 {
			p.mu.Lock()
			kept := p.conns[:0]
			for _, c := range p.conns {
				if !contains(gone, c) {
					kept = append(kept, c)
				}
			}
			clear(p.conns[len(kept):])
			p.conns = kept
			p.mu.Unlock()
		}
	}
}

func contains(list []*wireConn, c *wireConn) bool {
	for _, x := range list {
		if x == c {
			return true
		}
	}
	return false
}

// polled is a datagram the poller read for pion.
type polled struct {
	b    []byte
	from netip.AddrPort
}

// drain reads what the socket holds; false when the socket is closed.
func (c *wireConn) drain() bool {
	now := time.Now()
	for {
		if err := c.rb.fill(c.UDPConn, false); err != nil {
			close(c.polled)
			return false
		}
		for i := range c.rb.size() {
			b, from := c.rb.datagram(i)
			if c.w.packet(b, now) {
				select {
				case c.polled <- polled{b: append([]byte(nil), b...), from: from}:
				default: // pion is not reading: dropped like a full socket would
				}
			}
		}
		if !c.rb.full() {
			return true
		}
	}
}

// readPolled is ReadFromAddrPort once the poller owns the socket.
func (c *wireConn) readPolled(b []byte) (int, netip.AddrPort, error) {
	d, ok := <-c.polled
	if !ok {
		return 0, netip.AddrPort{}, net.ErrClosed
	}
	return copy(b, d.b), d.from, nil
}
