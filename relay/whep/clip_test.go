package whep

import (
	"context"
	"cordon/internal/testtool"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v5/pkg/format/rtph265"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/pion/webrtc/v4"

	"cordon/democam"
	"cordon/relay"
)

// startClipCamera loops one of democam's real encoded clips into a stream.
func startClipCamera(t testing.TB, hub *relay.Hub, id string, name democam.ClipName) *democam.Clip {
	t.Helper()
	clip, err := democam.LoadClip(name)
	if err != nil {
		t.Fatal(err)
	}
	st := &relay.Stream{Camera: id}
	if err := st.Initialize(); err != nil {
		t.Fatal(err)
	}
	hub.Put(st)
	tr := relay.Track{Kind: relay.KindVideo, Codec: relay.CodecH264, ClockRate: 90000, ParamSets: [][]byte{clip.SPS, clip.PPS}}
	if clip.Codec == democam.CodecH265 {
		tr.Codec, tr.ParamSets = relay.CodecH265, [][]byte{clip.VPS, clip.SPS, clip.PPS}
	}
	if err := st.CameraConnected([]relay.Track{tr}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(time.Second / democam.FPS)
		defer tick.Stop()
		for n := 0; ; n++ {
			au := clip.AUs[n%len(clip.AUs)]
			pts := time.Duration(n) * time.Second / democam.FPS
			if err := st.WriteUnit(relay.Unit{Track: 0, PTS: pts, AU: au.NALUs}); err != nil {
				t.Error(err)
				return
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	t.Cleanup(func() { cancel(); wg.Wait(); st.Close() })
	return clip
}

// TestH265ToAClientThatOffersIt: a pion client offering H.265 gets the
// camera's H.265, starting with VPS, SPS, PPS and an IRAP picture.
func TestH265ToAClientThatOffersIt(t *testing.T) {
	e := newEnv(t, func(s *Server) { s.TCPListen = "" })
	startClipCamera(t, e.hub, "cam1", democam.ClipH265)
	time.Sleep(200 * time.Millisecond)

	me := &webrtc.MediaEngine{}
	if err := me.RegisterDefaultCodecs(); err != nil {
		t.Fatal(err)
	}
	se := webrtc.SettingEngine{}
	se.SetIncludeLoopbackCandidate(true)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	pc, err := webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithSettingEngine(se)).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	aus := make(chan [][]byte, 100)
	var wg sync.WaitGroup
	defer func() { _ = pc.Close(); wg.Wait() }()
	pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		wg.Add(1)
		defer wg.Done()
		if tr.Codec().MimeType != webrtc.MimeTypeH265 {
			t.Errorf("negotiated %s", tr.Codec().MimeType)
		}
		dec := &rtph265.Decoder{}
		_ = dec.Init()
		for {
			pkt, _, err := tr.ReadRTP()
			if err != nil {
				return
			}
			if au, err := dec.Decode(pkt); err == nil {
				select {
				case aus <- au:
				default:
				}
			}
		}
	})
	if _, err := pc.AddTransceiverFromKind(webrtc.RTPCodecTypeVideo, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
		t.Fatal(err)
	}
	offer, _ := pc.CreateOffer(nil)
	gathered := webrtc.GatheringCompletePromise(pc)
	_ = pc.SetLocalDescription(offer)
	<-gathered
	resp := post(t, e, "cam1", "alice", "application/sdp", pc.LocalDescription().SDP)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("POST: %d", resp.StatusCode)
	}
	var buf [65536]byte
	n, _ := resp.Body.Read(buf[:])
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: string(buf[:n])}); err != nil {
		t.Fatal(err)
	}
	select {
	case au := <-aus:
		var types []int
		for _, n := range au {
			types = append(types, int(n[0]>>1&0x3f))
		}
		if len(types) < 4 || !slices.Equal(types[:3], []int{32, 33, 34}) || types[3] < 16 || types[3] > 21 {
			t.Fatalf("first H.265 access unit has NAL types %v, want VPS SPS PPS IRAP", types)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no H.265 access unit")
	}

	// a client that does not offer H.265 is told so
	noH265 := strings.ReplaceAll(browserOffer(t, true), "H265", "XXXX")
	r := post(t, e, "cam1", "alice", "application/sdp", noH265)
	if r.StatusCode != http.StatusBadRequest {
		t.Fatalf("offer without H.265 for an H.265 camera: %d", r.StatusCode)
	}
}

const browserPage = `<!doctype html><html><body><video id="v" autoplay muted playsinline></video><script>
window.result = null;
window.start = async function () {
  const pc = new RTCPeerConnection({ iceServers: [] });
  window.pc = pc;
  pc.addTransceiver('video', { direction: 'recvonly' });
  pc.addTransceiver('audio', { direction: 'recvonly' });
  pc.ontrack = (e) => { if (e.track.kind === 'video') document.getElementById('v').srcObject = new MediaStream([e.track]); };
  await pc.setLocalDescription(await pc.createOffer());
  await new Promise((r) => {
    if (pc.iceGatheringState === 'complete') return r();
    pc.onicegatheringstatechange = () => { if (pc.iceGatheringState === 'complete') r(); };
    setTimeout(r, 2000);
  });
  const v = document.getElementById('v');
  const t0 = performance.now();
  v.requestVideoFrameCallback(() => { window.firstFrameMs = performance.now() - t0; });
  const res = await fetch('/whep/cam1', { method: 'POST', headers: { 'Content-Type': 'application/sdp', 'Authorization': 'Bearer alice' }, body: pc.localDescription.sdp });
  if (res.status !== 201) return 'POST ' + res.status + ' ' + await res.text();
  window.location_ = res.headers.get('Location');
  await pc.setRemoteDescription({ type: 'answer', sdp: await res.text() });
  return 'ok';
};
window.videoStats = async function () {
  const out = { framesDecoded: 0 };
  (await window.pc.getStats()).forEach((r) => {
    if (r.type === 'inbound-rtp' && r.kind === 'video') { out.framesDecoded = r.framesDecoded || 0; out.width = r.frameWidth || 0; out.keyFramesDecoded = r.keyFramesDecoded || 0; }
  });
  out.state = window.pc.connectionState;
  return out;
};
window.stop = async function () {
  const res = await fetch(window.location_, { method: 'DELETE', headers: { 'Authorization': 'Bearer alice' } });
  return res.status;
};
</script></body></html>`

// TestChromium: a real browser plays H.264 from the server (real encoded
// clip, UDP on loopback) and DELETE ends the session.
func TestChromium(t *testing.T) {
	e := newEnv(t, nil)
	clip := startClipCamera(t, e.hub, "cam1", democam.ClipMain)
	_ = clip
	mux := http.NewServeMux()
	mux.Handle("/whep/", e.srv)
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		_, _ = w.Write([]byte(browserPage))
	})
	hs := httptest.NewServer(mux)
	defer hs.Close()

	ctx := testtool.Browser(t, 60*time.Second)

	var res string
	if err := chromedp.Run(ctx, chromedp.Navigate(hs.URL+"/"),
		chromedp.Evaluate(`window.start()`, &res, awaitPromise)); err != nil {
		t.Fatal(err)
	}
	if res != "ok" {
		t.Fatalf("browser: %s", res)
	}
	var st struct {
		FramesDecoded    int    `json:"framesDecoded"`
		KeyFramesDecoded int    `json:"keyFramesDecoded"`
		Width            int    `json:"width"`
		State            string `json:"state"`
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		if err := chromedp.Run(ctx, chromedp.Evaluate(`window.videoStats()`, &st, awaitPromise)); err != nil {
			t.Fatal(err)
		}
		if st.FramesDecoded >= 30 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("chromium decoded %d frames (state %s)", st.FramesDecoded, st.State)
		}
		time.Sleep(200 * time.Millisecond)
	}
	var first float64
	_ = chromedp.Run(ctx, chromedp.Evaluate(`window.firstFrameMs || -1`, &first))
	t.Logf("chromium decoded %d frames (%d key), width %d; POST -> first frame shown: %.0f ms", st.FramesDecoded, st.KeyFramesDecoded, st.Width, first)
	if st.Width != 320 {
		t.Errorf("frame width %d, want 320", st.Width)
	}
	var status int
	if err := chromedp.Run(ctx, chromedp.Evaluate(`window.stop()`, &status, awaitPromise)); err != nil {
		t.Fatal(err)
	}
	if status != 200 || e.srv.Sessions.Count("") != 0 {
		t.Fatalf("DELETE from the browser: %d, %d sessions left", status, e.srv.Sessions.Count(""))
	}
}

func awaitPromise(p *runtime.EvaluateParams) *runtime.EvaluateParams { return p.WithAwaitPromise(true) }
