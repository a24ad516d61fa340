package whep

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/pion/webrtc/v4"

	"cordon/democam"
	"cordon/internal/testtool"
	"cordon/internal/whepclient"
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
	firstKey := make(chan struct{}) // the clip starts on a keyframe
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
			if n == 0 {
				close(firstKey)
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	t.Cleanup(func() { cancel(); wg.Wait(); st.Close() })
	<-firstKey
	return clip
}

// TestH265ToAClientThatOffersIt: a pion client offering H.265 gets the
// camera's H.265, starting with VPS, SPS, PPS and an IRAP picture.
func TestH265ToAClientThatOffersIt(t *testing.T) {
	e := newEnv(t, func(s *Server) { s.TCPListen = "" })
	startClipCamera(t, e.hub, "cam1", democam.ClipH265)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := whepclient.Dial(ctx, whepclient.Options{URL: e.http.URL + "/whep/cam1", Token: "alice", H265: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	select {
	case au := <-c.AUs():
		var types []int
		for _, n := range au.NALUs {
			types = append(types, int(n[0]>>1&0x3f))
		}
		if len(types) < 4 || !slices.Equal(types[:3], []int{32, 33, 34}) || types[3] < 16 || types[3] > 21 {
			t.Fatalf("first H.265 access unit has NAL types %v, want VPS SPS PPS IRAP", types)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no H.265 access unit")
	}
	if v, _ := c.Stats().VideoCodec, 0; !strings.EqualFold(v, webrtc.MimeTypeH265) {
		t.Fatalf("negotiated %s", v)
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
	poll := time.NewTicker(200 * time.Millisecond) // evaluating in chromium: not every 10 ms
	defer poll.Stop()
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
		<-poll.C
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
