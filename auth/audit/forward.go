package audit

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Forwarder ships every audit line, in order, to a syslog collector
// (audit.forward): RFC 5424 messages, octet-counted over TCP and TLS (RFC
// 5425), one per datagram over UDP. The audit files themselves are its
// disk-backed queue: it reads them from the last delivered seq, which it
// keeps in CursorPath, so lines written while the collector is away or
// cordon is down are sent later, in order; retention never deletes a file
// before its lines were delivered (Log.SetForwarded).
//
// Delivery is at least once: a line counts as delivered when the
// collector's TCP stack has acknowledged its bytes (SIOCOUTQ) and the
// connection has stayed up for ConfirmAfter since; anything not yet
// confirmed when a connection breaks is sent again on the next one, so a
// collector may receive a line twice (seq de-duplicates). Over UDP there
// is no acknowledgement: a line counts as delivered once sent, and a
// collector that is down loses what was sent meanwhile.
type Forwarder struct {
	// Log is the audit log whose lines are shipped (initialized). Required.
	Log *Log
	// URL is tcp+tls://host:port, tcp://host:port or udp://host:port.
	URL string
	// TLSConfig for tcp+tls (ForwardTLSConfig); nil = system roots and
	// the URL's host as the server name.
	TLSConfig *tls.Config
	// CursorPath keeps the highest delivered seq (state_dir). Required.
	CursorPath string
	// Logger (nil = slog.Default()). Metrics (nil = none).
	Logger  *slog.Logger
	Metrics *ForwardMetrics
	// ConfirmAfter: how long an acknowledged line's connection must stay
	// up before the line counts as delivered (0 = 1 s).
	ConfirmAfter time.Duration
	// DialTimeout and WriteTimeout (0 = 5 s and 10 s); RetryMax caps the
	// reconnect backoff (0 = 30 s).
	DialTimeout  time.Duration
	WriteTimeout time.Duration
	RetryMax     time.Duration

	// batches: a backlog goes out batchLines lines (or batchBytes) at a
	// time, with confirmation between batches, and no more than
	// maxPending lines are out unconfirmed (forwardBatch*).
	batchLines int
	batchBytes int
	maxPending int

	target    ForwardTarget
	delivered atomic.Uint64 // confirmed
	persisted atomic.Uint64 // confirmed and in CursorPath
	mu        sync.Mutex
	oldest    string // time field of the oldest undelivered line ("" = unknown)
	lastSave  time.Time
	up        int // 0 unknown, 1 connected, -1 down (log state changes once)
	stop      chan struct{}
	done      chan struct{}
}

var errStopped = errors.New("stopped")

// Batches of a backlog (a collector back after an outage, a restart with
// a cursor far behind): the cursor advances batch by batch instead of
// after the whole backlog went out, and what is held in memory for
// confirmation stays bounded.
const (
	forwardBatchLines = 1000
	forwardBatchBytes = 1 << 20
	forwardMaxPending = 16 * forwardBatchLines
)

// Initialize checks the configuration, reads the cursor and starts
// shipping.
func (f *Forwarder) Initialize() error {
	switch {
	case f.Log == nil || f.Log.Path == "":
		return errors.New("audit forward: no log")
	case f.CursorPath == "":
		return errors.New("audit forward: no cursor path")
	case f.ConfirmAfter < 0 || f.DialTimeout < 0 || f.WriteTimeout < 0 || f.RetryMax < 0:
		return errors.New("audit forward: negative duration")
	}
	t, err := ParseForwardURL(f.URL)
	if err != nil {
		return fmt.Errorf("audit forward: %w", err)
	}
	f.target = t
	f.ConfirmAfter = orDefault(f.ConfirmAfter, time.Second)
	f.DialTimeout = orDefault(f.DialTimeout, 5*time.Second)
	f.WriteTimeout = orDefault(f.WriteTimeout, 10*time.Second)
	f.RetryMax = orDefault(f.RetryMax, 30*time.Second)
	if f.batchLines <= 0 {
		f.batchLines, f.batchBytes, f.maxPending = forwardBatchLines, forwardBatchBytes, forwardMaxPending
	}
	if f.Logger == nil {
		f.Logger = slog.Default()
	}
	if f.TLSConfig == nil && t.Scheme == SchemeTLS {
		f.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12, ServerName: t.Host}
	}
	c, err := readCursor(f.CursorPath)
	if err != nil {
		return err
	}
	f.delivered.Store(c)
	f.persisted.Store(c)
	f.Log.SetForwarded(f.persisted.Load)
	f.stop, f.done = make(chan struct{}), make(chan struct{})
	go f.run()
	return nil
}

func orDefault(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

// Close stops shipping and saves the cursor.
func (f *Forwarder) Close() {
	if f.stop == nil {
		return
	}
	close(f.stop)
	<-f.done
	f.stop = nil
	f.save(true)
}

// Delivered returns the highest seq the collector is known to have.
func (f *Forwarder) Delivered() uint64 { return f.delivered.Load() }

func (f *Forwarder) run() {
	defer close(f.done)
	const minBackoff = 500 * time.Millisecond
	backoff := minBackoff
	for {
		sent, err := f.session()
		if errors.Is(err, errStopped) {
			return
		}
		f.Metrics.failed()
		f.setUp(false, err)
		f.updateLag()
		if sent > 0 {
			backoff = minBackoff
		}
		if !f.wait(backoff) {
			return
		}
		backoff = min(backoff*2, f.RetryMax)
	}
}

// wait waits d before the next attempt, keeping the lag metrics current
// as lines are written meanwhile; false when Close was called.
func (f *Forwarder) wait(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		select {
		case <-f.stop:
			return false
		case <-t.C:
			return true
		case <-f.Log.Changed():
			f.updateLag()
		}
	}
}

// sentLine is a line written to the current connection, not yet
// confirmed delivered.
type sentLine struct {
	seq  uint64
	at   time.Time
	end  int64 // bytes written to the TCP connection after this line
	time string
}

// session is one connection's life: it sends what the log holds from the
// cursor on, follows the log, confirms delivery, and returns (with the
// number of lines sent) when the connection breaks or Close is called.
func (f *Forwarder) session() (int, error) {
	lk, err := f.dial()
	if err != nil {
		return 0, err
	}
	var wg sync.WaitGroup
	defer wg.Wait() // after the close below: the reader goroutine ends with it
	defer func() { _ = lk.conn.Close() }()
	dead := make(chan error, 1)
	if lk.tcp != nil {
		wg.Add(1)
		go func() { // the collector never sends: a read returns when it goes away
			defer wg.Done()
			buf := make([]byte, 512)
			for {
				if _, err := lk.conn.Read(buf); err != nil {
					dead <- err
					return
				}
			}
		}()
	}
	rd, err := openLineReader(f.Log.Path, f.delivered.Load()+1)
	if err != nil {
		return 0, err
	}
	defer rd.close()
	f.setUp(true, nil)
	var pending []sentLine
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	sent := 0
	for {
		changed := f.Log.Changed()
		more := false
		if len(pending) < f.maxPending {
			var n int
			var err error
			n, more, err = f.sendAvailable(lk, rd, &pending)
			sent += n
			if err != nil {
				return sent, err
			}
		}
		if rd.gap > 0 {
			f.Logger.Error("audit forward: lines are missing from the audit files and cannot be sent (deleted by hand?)", "lines", rd.gap)
			rd.gap = 0
		}
		if more && len(pending) < f.maxPending { // a backlog: the next batch at once
			select {
			case <-f.stop:
				f.confirm(lk, &pending, true)
				return sent, errStopped
			case err := <-dead:
				return sent, fmt.Errorf("the collector closed the connection: %w", err)
			default:
			}
			f.confirm(lk, &pending, false)
			continue
		}
		select {
		case <-f.stop:
			f.confirm(lk, &pending, true)
			return sent, errStopped
		case err := <-dead:
			return sent, fmt.Errorf("the collector closed the connection: %w", err)
		case <-changed:
		case <-tick.C:
		}
		f.confirm(lk, &pending, false)
	}
}

// sendAvailable writes the lines the reader has, one batch at most (more:
// the batch is full, lines may be waiting).
func (f *Forwarder) sendAvailable(lk *link, rd *lineReader, pending *[]sentLine) (n int, more bool, err error) {
	bytes := 0
	for {
		if n >= f.batchLines || bytes >= f.batchBytes {
			return n, true, nil
		}
		head, _ := f.Log.Head()
		line, rec, ok, err := rd.next(head)
		if err != nil || !ok {
			return n, false, err
		}
		msg := syslogMessage(&rec, line)
		if f.target.Scheme != SchemeUDP {
			msg = octetCounted(msg)
		}
		_ = lk.conn.SetWriteDeadline(time.Now().Add(f.WriteTimeout))
		if _, err := lk.conn.Write(msg); err != nil {
			return n, false, err
		}
		n++
		bytes += len(msg)
		f.Metrics.sent()
		if lk.tcp == nil { // UDP: no acknowledgement to wait for
			f.delivered.Store(rec.Seq)
			continue
		}
		if len(*pending) == 0 {
			f.setOldest(rec.Time)
		}
		*pending = append(*pending, sentLine{seq: rec.Seq, at: time.Now(), end: lk.count.n.Load(), time: rec.Time})
	}
}

// confirm moves the cursor over the lines the collector's TCP stack has
// acknowledged and that have been out for ConfirmAfter (any age when
// final).
func (f *Forwarder) confirm(lk *link, pending *[]sentLine, final bool) {
	p := *pending
	if len(p) > 0 {
		unacked, known := unackedBytes(lk.tcp)
		acked := lk.count.n.Load() - int64(unacked)
		now := time.Now()
		i := 0
		for ; i < len(p); i++ {
			settled := now.Sub(p[i].at) >= f.ConfirmAfter
			if known && p[i].end > acked || !(settled || final && known) {
				break
			}
		}
		if i > 0 {
			f.delivered.Store(p[i-1].seq)
			*pending = p[i:]
			if len(*pending) > 0 {
				f.setOldest((*pending)[0].time)
			} else {
				f.setOldest("")
			}
		}
	}
	f.save(final)
	f.updateLag()
}

// save writes the cursor (at most twice a second unless forced) and lets
// retention use it.
func (f *Forwarder) save(force bool) {
	d := f.delivered.Load()
	if d == f.persisted.Load() {
		return
	}
	f.mu.Lock()
	due := force || time.Since(f.lastSave) >= 500*time.Millisecond
	if due {
		f.lastSave = time.Now()
	}
	f.mu.Unlock()
	if !due {
		return
	}
	if err := writeFileAtomic(f.CursorPath, []byte(strconv.FormatUint(d, 10)+"\n")); err != nil {
		f.Logger.Error("audit forward: cannot save the cursor; lines may be sent again after a restart", "path", f.CursorPath, "err", err)
		return
	}
	f.persisted.Store(d)
	f.Log.Prune()
}

func readCursor(path string) (uint64, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("audit forward: reading the cursor: %w", err)
	}
	n, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("audit forward: cursor file %s is damaged (delete it to send the whole log again)", path)
	}
	return n, nil
}

func (f *Forwarder) setOldest(t string) {
	f.mu.Lock()
	f.oldest = t
	f.mu.Unlock()
}

// updateLag publishes how far the collector is behind.
func (f *Forwarder) updateLag() {
	head, _ := f.Log.Head()
	lag := head - min(head, f.delivered.Load())
	f.mu.Lock()
	oldest := f.oldest
	f.mu.Unlock()
	if lag > 0 && oldest == "" { // not read yet this session: look it up
		if rd, err := openLineReader(f.Log.Path, f.delivered.Load()+1); err == nil {
			if _, rec, ok, _ := rd.next(head); ok {
				oldest = rec.Time
				f.setOldest(oldest)
			}
			rd.close()
		}
	}
	secs := 0.0
	if t, err := time.Parse(time.RFC3339Nano, oldest); err == nil && lag > 0 {
		secs = max(time.Since(t).Seconds(), 0)
	}
	f.Metrics.lag(lag, secs)
}

func (f *Forwarder) setUp(up bool, err error) {
	state := -1
	if up {
		state = 1
	}
	f.mu.Lock()
	changed := f.up != state
	f.up = state
	f.mu.Unlock()
	f.Metrics.connected(up)
	switch {
	case !changed:
	case up:
		f.Logger.Info("audit forwarding connected", "collector", f.target.Addr, "scheme", f.target.Scheme, "from_seq", f.delivered.Load()+1)
	default:
		f.Logger.Warn("audit forwarding: collector unreachable; lines are kept and sent when it is back", "collector", f.target.Addr, "err", err)
	}
}

// link is one connection to the collector.
type link struct {
	conn  net.Conn
	tcp   *net.TCPConn // nil for UDP
	count *countConn
}

// countConn counts the bytes written to the TCP connection (ciphertext
// for TLS), to match them with SIOCOUTQ.
type countConn struct {
	net.Conn
	n atomic.Int64
}

func (c *countConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	c.n.Add(int64(n))
	return n, err
}

func (f *Forwarder) dial() (*link, error) {
	d := net.Dialer{Timeout: f.DialTimeout}
	if f.target.Scheme == SchemeUDP {
		c, err := d.Dial("udp", f.target.Addr)
		if err != nil {
			return nil, err
		}
		return &link{conn: c}, nil
	}
	c, err := d.Dial("tcp", f.target.Addr)
	if err != nil {
		return nil, err
	}
	tcp := c.(*net.TCPConn)
	_ = tcp.SetKeepAlive(true)
	lk := &link{conn: &countConn{Conn: c}, tcp: tcp}
	lk.count = lk.conn.(*countConn)
	if f.target.Scheme == SchemeTLS {
		tc := tls.Client(lk.count, f.TLSConfig)
		_ = tc.SetDeadline(time.Now().Add(f.DialTimeout))
		if err := tc.Handshake(); err != nil {
			_ = c.Close()
			return nil, fmt.Errorf("TLS handshake: %w", err)
		}
		_ = tc.SetDeadline(time.Time{})
		lk.conn = tc
	}
	return lk, nil
}

// File names in state_dir for the wiring: the signing key state and the
// forwarder's cursor.
const (
	KeyFileName    = "audit-signing.key"
	CursorFileName = "audit-forward.cursor"
)
