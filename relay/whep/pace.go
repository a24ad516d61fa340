package whep

import (
	"context"
	"time"

	"cordon/relay"
)

// Paced sends. A new viewer starts on the cached GOP (relay.Reader primes
// it): up to a GOP of frames, about 900 packets for 1080p at 4 Mbit/s and
// GOP 2 s, queued at once. Written back to back they overflow a browser's
// default UDP receive buffer (212992 bytes hold about 90 datagrams), and
// the new viewer's first GOP arrives damaged, which is what the cache is
// there to prevent. So every session sends through a token bucket in
// packets: at most SendBurst packets at once (one batched send each,
// cork.go), refilled at SendRate packets a second (and never slower than
// twice the stream's own packet rate, so a viewer always catches up). Live
// frames of ordinary size never wait (the bucket is full between them);
// the cached GOP and a large keyframe go out in bursts of SendBurst.
//
// While a viewer catches up its video timestamps follow the send time
// (restamper): a browser's jitter estimate then stays low and the cached
// frames play as they arrive, a short fast-forward from the keyframe to
// live, instead of growing the playout delay. Once caught up the offset is
// fixed for the rest of the session; RTP timestamps are per SSRC and the
// sender reports map what was sent to wall time, so lip sync holds.

// Defaults of the send pacing.
const (
	DefaultSendBurst = 48   // packets at once: half a default receive buffer
	DefaultSendRate  = 2600 // packets a second (about 24 Mbit/s)
)

// pacer is a token bucket in packets; reserve is pure (tests drive it).
type pacer struct {
	burst, rate float64
	tokens      float64
	last        time.Time
	// the stream's own packet rate, from the frames' PTS (streamRate)
	pkts       int
	firstPTS   time.Duration
	lastPTS    time.Duration
	havePTS    bool
	streamRate float64
}

func newPacer(burst, rate int) *pacer {
	return &pacer{burst: float64(burst), rate: float64(rate), tokens: float64(burst)}
}

// observe learns the stream's packet rate from a video frame.
func (p *pacer) observe(pts time.Duration, packets int) {
	if !p.havePTS {
		p.havePTS, p.firstPTS = true, pts
	}
	p.pkts += packets
	p.lastPTS = max(p.lastPTS, pts)
	if span := p.lastPTS - p.firstPTS; span >= time.Second {
		p.streamRate = float64(p.pkts) / span.Seconds()
	}
}

// reserve takes n packets (n <= burst) at now and returns how long to wait
// before sending them.
func (p *pacer) reserve(n int, now time.Time) time.Duration {
	rate := max(p.rate, 2*p.streamRate)
	if !p.last.IsZero() {
		p.tokens = min(p.burst, p.tokens+now.Sub(p.last).Seconds()*rate)
	}
	p.last = now
	p.tokens -= float64(n)
	if p.tokens >= 0 {
		return 0
	}
	return time.Duration(-p.tokens / rate * float64(time.Second))
}

// restamper rewrites video timestamps while a viewer catches up.
type restamper struct {
	clock    int // Hz
	have     bool
	stamp    uint32 // the last timestamp sent
	sent     time.Time
	offset   uint32 // added once live
	finished bool   // caught up: offset fixed
}

// apply rewrites d's timestamps (all its packets share one) for a video
// frame about to be sent at now.
func (r *restamper) apply(d *relay.Delivery, now time.Time) {
	if len(d.Packets) == 0 {
		return
	}
	ts := d.Packets[0].Timestamp
	switch {
	case r.finished:
		ts += r.offset
	case !r.have:
		r.have = true // the first frame keeps its own timestamp
	default:
		step := uint32(now.Sub(r.sent) * time.Duration(r.clock) / time.Second)
		ts = r.stamp + max(step, 1)
	}
	if !r.finished && !d.Primed && d.Backlog == 0 {
		r.finished, r.offset = true, ts-d.Packets[0].Timestamp
	}
	r.stamp, r.sent = ts, now
	for i := range d.Packets {
		d.Packets[i].Timestamp = ts
	}
}

// paceWait waits for the pacer's reservation of n packets, or ctx.
func paceWait(ctx context.Context, t *time.Timer, p *pacer, n int) bool {
	wait := p.reserve(n, time.Now())
	if wait <= 0 {
		return ctx.Err() == nil
	}
	t.Reset(wait)
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
