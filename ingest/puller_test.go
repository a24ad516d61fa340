package ingest

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v5/pkg/auth"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"cordon/democam"
	"cordon/internal/testtool"
	"cordon/relay"
	"cordon/relay/sanitize"
)

// longestIDR is the longest IDR NAL unit of a democam clip: it needs FU-A
// fragments to travel.
func longestIDR(t *testing.T, name democam.ClipName) int {
	t.Helper()
	clip, err := democam.LoadClip(name)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, au := range clip.AUs {
		for _, x := range au.NALUs {
			if x[0]&0x1f == 5 {
				n = max(n, len(x))
			}
		}
	}
	return n
}

func TestPlayTransports(t *testing.T) {
	idrLen := longestIDR(t, democam.ClipMain)
	for _, tc := range []struct {
		transport string
		want      string
	}{{"tcp", "TCP"}, {"udp", "UDP"}, {"auto", "UDP"}} {
		t.Run(tc.transport, func(t *testing.T) {
			t.Parallel()
			cam := newCam(t, camOpts{host: "127.0.0.2", audio: democam.AudioPCMU})
			reg := prometheus.NewRegistry()
			m := NewMetrics(reg)
			p := startPull(t, camURL(cam, "", ""), func(p *Puller) { p.Transport = tc.transport; p.Metrics = m })
			p.connected(t, 5*time.Second)
			// a reassembled keyframe (FU-A) and audio
			testtool.WaitFor(t, 10*time.Second, "a keyframe and audio", func() bool {
				_, units := p.sink.snapshot()
				key, audio := false, 0
				for _, u := range units {
					key = key || u.Track == 0 && len(u.AU) == 3
					if u.Track == 1 {
						audio++
					}
				}
				return key && audio >= 10
			})
			conn, transport, dropped := p.obs.get()
			if conn.VideoCodec != "H264" || conn.AudioCodec != "PCMU" || transport != tc.want || len(dropped) != 0 {
				t.Fatalf("connection %+v transport %q dropped %q", conn, transport, dropped)
			}
			if err := p.stop(); !errors.Is(err, errTestStop) {
				t.Fatalf("Pull returned %v, want the cancel cause", err)
			}
			conns, units := p.sink.snapshot()
			if len(conns) != 1 || len(conns[0]) != 2 {
				t.Fatalf("connected %v", conns)
			}
			tr := conns[0]
			clip, _ := democam.LoadClip(democam.ClipMain)
			if tr[0].Codec != relay.CodecH264 || tr[0].ClockRate != 90000 || len(tr[0].ParamSets) != 2 ||
				!bytes.Equal(tr[0].ParamSets[0], clip.SPS) || !bytes.Equal(tr[0].ParamSets[1], clip.PPS) {
				t.Fatalf("video track %+v", tr[0])
			}
			if tr[1].Codec != relay.CodecPCMU || tr[1].ClockRate != 8000 || tr[1].Channels != 1 {
				t.Fatalf("audio track %+v", tr[1])
			}
			checkUnits(t, units, tr, democam.AudioFrameSize(democam.AudioPCMU))
			longest := 0
			for _, u := range units {
				for _, n := range u.AU {
					if n[0]&0x1f == 5 {
						longest = max(longest, len(n))
					}
				}
			}
			if longest == 0 || longest > idrLen {
				t.Fatalf("longest IDR received %d bytes, clip's longest %d", longest, idrLen)
			}
			if got := testutil.ToFloat64(m.frames.WithLabelValues("cam1", "video")); got < 1 {
				t.Fatalf("frames metric %v", got)
			}
			if got := testutil.ToFloat64(m.bytes.WithLabelValues("cam1")); got < float64(longest) {
				t.Fatalf("bytes metric %v", got)
			}
		})
	}
}

func TestAuth(t *testing.T) {
	const user, pass = "viewer", "s3cr3t-Pa55"
	for _, tc := range []struct {
		name    string
		methods []auth.VerifyMethod
	}{
		{"digest", []auth.VerifyMethod{auth.VerifyMethodDigestMD5}},
		{"basic", []auth.VerifyMethod{auth.VerifyMethodBasic}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cam := newCam(t, camOpts{host: "127.0.0.3", user: user, pass: pass, authMethods: tc.methods})
			ok := startPull(t, camURL(cam, user, pass), func(p *Puller) { p.Transport = "tcp" })
			ok.connected(t, 5*time.Second)
			ok.stop()

			bad := startPull(t, camURL(cam, user, "wrong-"+pass), func(p *Puller) { p.Transport = "tcp" })
			err := bad.ended(t, 5*time.Second)
			if err == nil || !strings.Contains(err.Error(), "401") {
				t.Fatalf("Pull with a wrong password: %v", err)
			}
			for _, s := range []string{err.Error(), bad.logs.String(), ok.logs.String()} {
				if strings.Contains(s, pass) {
					t.Fatalf("credentials leaked: %q", s)
				}
			}
		})
	}
}

// The camera's metadata track and audio back-channel are dropped without a
// SETUP, counted and described.
func TestDroppedTracksNotSetUp(t *testing.T) {
	cam := newCam(t, camOpts{host: "127.0.0.3", audio: democam.AudioPCMU, quirks: democam.Quirks{DahuaTracks: true}})
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	p := startPull(t, camURL(cam, "", ""), func(p *Puller) { p.Transport = "tcp"; p.Metrics = m })
	p.connected(t, 5*time.Second)
	p.waitUnits(t, 3, 3)
	p.stop()
	_, _, dropped := p.obs.get()
	if strings.Join(dropped, "|") != "application: ONVIF metadata track|audio: back-channel" {
		t.Fatalf("dropped %q", dropped)
	}
	if got := cam.Requests("SETUP"); got != 2 {
		t.Fatalf("%d SETUPs, want 2", got)
	}
	for _, k := range []string{sanitize.TrackMetadata, sanitize.TrackBackchannel} {
		if got := testutil.ToFloat64(m.tracksDropped.WithLabelValues("cam1", k)); got != 1 {
			t.Fatalf("dropped{kind=%s} = %v", k, got)
		}
	}
	conns, units := p.sink.snapshot()
	if len(conns[0]) != 2 {
		t.Fatalf("tracks %+v", conns[0])
	}
	checkUnits(t, units, conns[0], democam.AudioFrameSize(democam.AudioPCMU))
	if !strings.Contains(p.logs.String(), "application: ONVIF metadata track") {
		t.Fatal("dropped track not logged")
	}
}

// A sink error ends the Pull with that error; nothing is written after it.
func TestSinkErrorEndsPull(t *testing.T) {
	t.Parallel()
	cam := newCam(t, camOpts{})
	p := startPull(t, camURL(cam, "", ""), func(p *Puller) { p.Transport = "tcp" })
	p.sink.mu.Lock()
	p.sink.failAfter, p.sink.failErr = 5, relay.ErrBFrames
	p.sink.mu.Unlock()
	err := p.ended(t, 10*time.Second)
	if !errors.Is(err, relay.ErrBFrames) || err.Error() != relay.ErrBFrames.Error() {
		t.Fatalf("Pull returned %v", err)
	}
	if _, units := p.sink.snapshot(); len(units) != 4 {
		t.Fatalf("%d units written, want the 4 before the error", len(units))
	}
}

// packetization-mode=0 camera that sets the marker bit on SPS and PPS: every
// parameter set arrives as its own unit with the IDR's PTS; none is dropped.
func TestPacketizationMode0MarkerOnParamSets(t *testing.T) {
	t.Parallel()
	cam := newCam(t, camOpts{host: "127.0.0.3", quirks: democam.Quirks{PacketizationMode0: true, MarkerOnParamSets: true}})

	// gortsplib reads mode 0 only over TCP: an explicit udp transport fails
	// with an explanation
	u := startPull(t, camURL(cam, "", ""), func(p *Puller) { p.Transport = "udp" })
	if err := u.ended(t, 5*time.Second); err == nil || !strings.Contains(err.Error(), "packetization-mode=0") {
		t.Fatalf("udp: %v", err)
	}

	// auto reads it over TCP
	p := startPull(t, camURL(cam, "", ""), func(p *Puller) { p.Transport = "auto" })
	p.connected(t, 5*time.Second)
	p.waitUnits(t, 25, 0) // more than a GOP's worth of units
	p.stop()
	if _, transport, _ := p.obs.get(); transport != "TCP" {
		t.Fatalf("transport %q", transport)
	}
	conns, units := p.sink.snapshot()
	checkUnits(t, units, conns[0], 0)
	var sps, pps, idr int
	for i, u := range units {
		switch u.AU[0][0] & 0x1f {
		case 7:
			sps++
			if len(u.AU) != 1 {
				t.Fatalf("SPS unit with %d NAL units", len(u.AU))
			}
			if i+2 >= len(units) {
				break
			}
			if units[i+1].AU[0][0]&0x1f != 8 || len(units[i+1].AU) != 1 || units[i+1].PTS != u.PTS || units[i+2].PTS != u.PTS {
				t.Fatal("SPS, PPS and IDR should be separate units sharing a PTS")
			}
		case 8:
			pps++
		case 5:
			idr++
		}
	}
	if sps == 0 || pps == 0 || idr == 0 {
		t.Fatalf("sps=%d pps=%d idr=%d", sps, pps, idr)
	}
}

// A camera that never sets the marker bit: units are split by timestamp and
// keep their own PTS (one frame, 1/15 s, apart).
func TestNoMarkerUnitsKeepTheirPTS(t *testing.T) {
	t.Parallel()
	cam := newCam(t, camOpts{quirks: democam.Quirks{NoMarker: true}})
	p := startPull(t, camURL(cam, "", ""), func(p *Puller) { p.Transport = "tcp" })
	p.connected(t, 5*time.Second)
	p.waitUnits(t, 10, 0)
	p.stop()
	conns, units := p.sink.snapshot()
	checkUnits(t, units, conns[0], 0)
	frame := time.Second / democam.FPS
	for i := 1; i < len(units); i++ {
		if d := units[i].PTS - units[i-1].PTS; d < frame-time.Microsecond || d > frame+time.Microsecond {
			t.Fatalf("unit %d: PTS step %v, want %v", i, d, frame)
		}
		key := units[i].AU[0][0]&0x1f == 7
		if key && len(units[i].AU) != 3 || !key && len(units[i].AU) != 1 {
			t.Fatalf("unit %d: %d NAL units", i, len(units[i].AU))
		}
	}
}

// A camera that stops sending media but keeps the connection is dead.
func TestDeadCameraDetected(t *testing.T) {
	t.Parallel()
	cam := newCam(t, camOpts{host: "127.0.0.3"})
	p := startPull(t, camURL(cam, "", ""), func(p *Puller) { p.Transport = "tcp"; p.MediaTimeout = 700 * time.Millisecond })
	p.connected(t, 5*time.Second)
	cam.PauseMedia(true)
	paused := time.Now()
	err := p.ended(t, 5*time.Second)
	if d := time.Since(paused); d < 600*time.Millisecond {
		t.Fatalf("declared dead after %v", d)
	}
	if err == nil || !strings.Contains(err.Error(), "no media") {
		t.Fatalf("Pull returned %v", err)
	}
}

// gortsplib sends keepalives before the session timeout the camera
// announces: with a 2 s timeout, a UDP session (no RTSP traffic otherwise)
// survives several keepalive rounds only thanks to them.
func TestKeepalive(t *testing.T) {
	t.Parallel()
	cam := newCam(t, camOpts{timeout: 2 * time.Second})
	p := startPull(t, camURL(cam, "", ""), func(p *Puller) { p.Transport = "udp" })
	p.connected(t, 5*time.Second)
	testtool.WaitFor(t, 10*time.Second, "three keepalives", func() bool {
		return cam.Requests("OPTIONS")+cam.Requests("GET_PARAMETER") >= 4 // 1 OPTIONS at connect + 3
	})
	if cam.Connections() != 1 {
		t.Fatalf("%d connections: the session was not kept alive", cam.Connections())
	}
	_, before := p.sink.count()
	v0, _ := p.sink.count()
	p.waitUnits(t, v0+5, before)
	if err := p.stop(); !errors.Is(err, errTestStop) {
		t.Fatalf("Pull ended by itself: %v", err)
	}
}

func TestInitializeValidates(t *testing.T) {
	for _, p := range []*Puller{
		{ID: "", URL: mustURL(t, "rtsp://h/x")},
		{ID: "a", URL: mustURL(t, "http://h/x")},
		{ID: "a", URL: mustURL(t, "rtsp:///x")},
		{ID: "a", URL: mustURL(t, "rtsp://h/x"), Transport: "quic"},
		{ID: "a"},
	} {
		if err := p.Initialize(); err == nil {
			t.Errorf("%+v: no error", p)
		}
	}
}

func TestCodecs(t *testing.T) {
	for _, tc := range []struct {
		name      string
		opts      camOpts
		video     relay.Codec
		audio     relay.Codec
		rate, chs int
	}{
		{"h265+opus", camOpts{quirks: democam.Quirks{H265: true}, audio: democam.AudioOpus}, relay.CodecH265, relay.CodecOpus, 48000, 2},
		{"h264+aac", camOpts{audio: democam.AudioAAC}, relay.CodecH264, relay.CodecAAC, 16000, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.opts.host = "127.0.0.3"
			cam := newCam(t, tc.opts)
			p := startPull(t, camURL(cam, "", ""), func(p *Puller) { p.Transport = "tcp" })
			p.connected(t, 5*time.Second)
			p.waitUnits(t, 5, 5)
			p.stop()
			if conn, _, _ := p.obs.get(); conn.VideoCodec != string(tc.video) || conn.AudioCodec != string(tc.audio) {
				t.Fatalf("connection %+v", conn)
			}
			conns, units := p.sink.snapshot()
			tr := conns[0]
			if tr[0].Codec != tc.video || tr[1].Codec != tc.audio || tr[1].ClockRate != tc.rate || tr[1].Channels != tc.chs {
				t.Fatalf("tracks %+v", tr)
			}
			if tc.video == relay.CodecH265 && (len(tr[0].ParamSets) != 3 || tr[0].ParamSets[0][0]>>1 != 32) {
				t.Fatalf("H.265 param sets %x", tr[0].ParamSets)
			}
			if tc.audio == relay.CodecAAC && !bytes.Equal(tr[1].AACConfig, []byte{0x14, 0x08}) {
				t.Fatalf("AAC config %x", tr[1].AACConfig)
			}
			if v, a := checkUnits(t, units, tr, democam.AudioFrameSize(tc.opts.audio)); v < 5 || a < 5 {
				t.Fatalf("%d video, %d audio units", v, a)
			}
		})
	}
}

// auto against a camera without UDP: gortsplib retries the SETUP over TCP.
func TestAutoFallsBackToTCP(t *testing.T) {
	t.Parallel()
	cam := newCam(t, camOpts{audio: democam.AudioPCMU, noUDP: true})
	p := startPull(t, camURL(cam, "", ""), func(p *Puller) { p.Transport = "auto" })
	p.connected(t, 5*time.Second)
	p.waitUnits(t, 3, 3)
	if _, transport, _ := p.obs.get(); transport != "TCP" {
		t.Fatalf("transport %q", transport)
	}
}
