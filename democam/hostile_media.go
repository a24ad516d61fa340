package democam

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/bluenviron/gortsplib/v5/pkg/format/rtph264"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
)

// sdp is the camera's DESCRIBE body, with the SDP attacks applied.
func (h *HostileCamera) sdp(a Attacks) []byte {
	sps, pps := h.clip.SPS, h.clip.PPS
	if a.ParamSetTails {
		sps, pps = h.withTail(sps), h.withTail(pps)
	}
	host, _, _ := strings.Cut(h.addr, ":")
	var b strings.Builder
	fmt.Fprintf(&b, "v=0\r\no=- 1 1 IN IP4 %s\r\ns=Hostile Media Server\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\na=control:*\r\n", host)
	if a.GiantSDP {
		filler := strings.Repeat("z", 200)
		for i := 0; b.Len() < 120_000; i++ {
			fmt.Fprintf(&b, "a=x-vendor-%d:%s\r\n", i, filler)
		}
	}
	fmt.Fprintf(&b, "m=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n"+
		"a=fmtp:96 packetization-mode=1;profile-level-id=%02X%02X%02X;sprop-parameter-sets=%s,%s\r\na=control:trackID=0\r\n",
		sps[1], sps[2], sps[3], base64.StdEncoding.EncodeToString(sps), base64.StdEncoding.EncodeToString(pps))
	if a.EndlessTracks {
		for i := 1; i <= 500; i++ {
			fmt.Fprintf(&b, "m=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\na=control:trackID=%d\r\n", i)
		}
	}
	return []byte(b.String())
}

func (h *HostileCamera) withTail(nal []byte) []byte {
	return append(bytes.Clone(nal), h.VendorTail...)
}

// frameNALUs returns the NAL units of video frame g with the media attacks
// applied.
func (hc *hostileConn) frameNALUs(g int) [][]byte {
	h := hc.h
	a := hc.a
	au := h.clip.AUs[g%len(h.clip.AUs)]
	out := make([][]byte, 0, len(au.NALUs)+4)
	if a.SPSChurn && !au.Key {
		out = append(out, h.clip.SPS, h.clip.PPS)
	}
	out = append(out, au.NALUs...)
	for i, n := range out {
		if !isParamSet(CodecH264, n) {
			continue
		}
		if a.SPSChurn && n[0]&0x1f == 7 {
			n = bytes.Clone(n)
			n[3] = byte(10 + g%40) // level_idc: a different, valid SPS every frame
		}
		if a.ParamSetTails {
			n = h.withTail(n)
		}
		out[i] = n
	}
	if a.BitrateFlood {
		perFrame := h.FloodMbps * 1_000_000 / 8 / FPS
		for perFrame > 0 {
			n := min(perFrame, 60_000)
			filler := bytes.Repeat([]byte{0xff}, n)
			filler[0], filler[n-1] = 0x0c, 0x80
			out = append(out, filler)
			perFrame -= n
		}
	}
	return out
}

// stream plays the clip on the connection's interleaved channel until the
// connection ends, committing the media attacks.
func (hc *hostileConn) stream() {
	h := hc.h
	enc := &rtph264.Encoder{PayloadType: 96, PacketizationMode: 1, PayloadMaxSize: 1400}
	if err := enc.Init(); err != nil {
		return
	}
	tick := time.NewTicker(time.Second / FPS)
	defer tick.Stop()
	ts := rand.Uint32()
	var seq uint16
	ssrc := rand.Uint32()
	// start on a keyframe
	first := 0
	for i, au := range h.clip.AUs {
		if au.Key {
			first = i
			break
		}
	}
	for g := first; ; g++ {
		pkts, err := enc.Encode(hc.frameNALUs(g))
		if err != nil {
			h.log.Error("packetize", "err", err)
			return
		}
		for _, p := range pkts {
			p.Timestamp, p.SequenceNumber, p.SSRC = ts, seq, ssrc
			seq++
			b, _ := p.Marshal()
			if hc.interleave(hc.channel, b) != nil {
				return
			}
		}
		if !hc.extras(g-first, ts, &seq, ssrc) {
			return
		}
		ts += frameTicks
		if hc.a.TimestampJumps {
			ts += uint32(rand.Int64N(3600*videoClock)) - 1800*videoClock
		}
		select {
		case <-hc.done:
			return
		case <-h.stop:
			return
		case <-tick.C:
		}
	}
}

// extras sends what the attacks add after frame n; false ends the stream.
func (hc *hostileConn) extras(n int, ts uint32, seq *uint16, ssrc uint32) bool {
	a := hc.a
	if a.InterleavedAbuse {
		junk := bytes.Repeat([]byte{0xa5}, 1000)
		for i := range 50 {
			if hc.interleave(100+i, junk) != nil {
				return false
			}
		}
	}
	if a.RTCPFlood {
		sr := &rtcp.SenderReport{SSRC: ssrc, NTPTime: uint64(time.Now().UnixNano()), RTPTime: ts}
		b, _ := sr.Marshal()
		for range 200 {
			if hc.interleave(hc.channel+1, b) != nil {
				return false
			}
		}
	}
	if a.HugeNALUnits && n >= 2*FPS {
		return hc.endlessNAL(ts+frameTicks, seq, ssrc)
	}
	return true
}

// endlessNAL sends FU-A fragments of one IDR slice that never ends, at
// the 100 Mbit/s of a camera's network port.
func (hc *hostileConn) endlessNAL(ts uint32, seq *uint16, ssrc uint32) bool {
	payload := make([]byte, 1400)
	for i := 2; i < len(payload); i++ {
		payload[i] = byte(i)
	}
	payload[0] = 0x7c // FU indicator: NRI 3, type 28 (FU-A)
	pace := time.NewTicker(10 * time.Millisecond)
	defer pace.Stop()
	for i := 0; ; i++ {
		if i%89 == 0 { // 89 packets of 1.4 kB per 10 ms: 100 Mbit/s
			select {
			case <-hc.done:
				return false
			case <-hc.h.stop:
				return false
			case <-pace.C:
			}
		}
		payload[1] = 0x05 // FU header: IDR slice, middle fragment
		if i == 0 {
			payload[1] = 0x85 // start
		}
		p := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: *seq, Timestamp: ts, SSRC: ssrc}, Payload: payload}
		*seq++
		b, _ := p.Marshal()
		if hc.interleave(hc.channel, b) != nil {
			return false
		}
	}
}

type response struct {
	code    int
	headers []string
	body    []byte
}

var statusText = map[int]string{200: "OK", 302: "Found", 401: "Unauthorized", 461: "Unsupported Transport", 501: "Not Implemented"}

// send writes a response (byte by byte under SlowDrip); false when the
// connection is gone.
func (hc *hostileConn) send(r response) bool {
	var b strings.Builder
	fmt.Fprintf(&b, "RTSP/1.0 %d %s\r\n", r.code, statusText[r.code])
	for _, l := range r.headers {
		b.WriteString(l + "\r\n")
	}
	fmt.Fprintf(&b, "Content-Length: %d\r\n\r\n", len(r.body))
	b.Write(r.body)
	msg := []byte(b.String())
	if !hc.a.SlowDrip {
		return hc.write(msg) == nil
	}
	t := time.NewTicker(hc.h.DripInterval)
	defer t.Stop()
	for i := range msg {
		if hc.write(msg[i:i+1]) != nil {
			return false
		}
		select {
		case <-t.C:
		case <-hc.h.stop:
			return false
		}
	}
	return true
}

func (hc *hostileConn) write(b []byte) error {
	hc.wmu.Lock()
	defer hc.wmu.Unlock()
	_ = hc.c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	n, err := hc.c.Write(b)
	hc.h.bytesOut.Add(int64(n))
	return err
}

// interleave writes one interleaved frame.
func (hc *hostileConn) interleave(ch int, payload []byte) error {
	if len(payload) > 0xffff {
		return errors.New("interleaved payload too large")
	}
	f := make([]byte, 4+len(payload))
	f[0], f[1], f[2], f[3] = '$', byte(ch), byte(len(payload)>>8), byte(len(payload))
	copy(f[4:], payload)
	return hc.write(f)
}
