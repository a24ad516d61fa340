package e2e

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"cordon/demo"
	"cordon/e2e/e2eutil"
	"cordon/internal/testtool"
)

type coreStats struct {
	FramesDecoded float64 `json:"framesDecoded"`
	Width         float64 `json:"width"`
	Height        float64 `json:"height"`
	State         string  `json:"state"`
}

func coreEvalStats(ctx context.Context, id string) (*coreStats, error) {
	var s *coreStats
	err := chromedp.Run(ctx, chromedp.Evaluate(`window.cordonStats(`+"'"+id+"'"+`)`, &s,
		func(p *runtime.EvaluateParams) *runtime.EvaluateParams { return p.WithAwaitPromise(true) }))
	return s, err
}

// TestBrowserPlaysDemo: the real `cordon demo` (demo.Start on
// ephemeral loopback ports) in headless chromium: sign in through the form
// with the demo credentials, the lobby tile reaches "playing", the video
// has a size, framesDecoded grows by 1 s of video, and the page reports no CSP
// violation, script error or exception. Screenshot:
// e2e/artifacts/browser-demo.png.
// (Function over 80 lines: one scenario whose steps build on each other, on one fixture.)
func TestBrowserPlaysDemo(t *testing.T) {
	d, err := demo.Start(demo.Options{
		HTTPListen: "127.0.0.1:0", RTSPListen: "127.0.0.1:0", WebRTCListen: "127.0.0.1:0", MetricsListen: "127.0.0.1:0",
		StateDir: filepath.Join(t.TempDir(), "state"),
		Logger:   slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatalf("demo.Start: %v", err)
	}
	t.Cleanup(d.Close)
	if !strings.HasPrefix(d.URL, "http://127.0.0.1:") {
		t.Fatalf("demo URL %q is not plain HTTP on loopback", d.URL)
	}

	ctx := testtool.Browser(t, 120*time.Second)
	problems := testtool.WatchPage(ctx)
	if err := chromedp.Run(ctx,
		testtool.AddCSPProbe(""),
		chromedp.Navigate(d.URL),
	); err != nil {
		t.Fatalf("open %s: %v", d.URL, err)
	}
	var ok bool
	if err := chromedp.Run(ctx,
		chromedp.Poll(`!document.getElementById('signin').hidden && !document.getElementById('signin-submit').disabled`, &ok,
			chromedp.WithPollingTimeout(20*time.Second)),
		chromedp.SetValue("#username", d.User, chromedp.ByQuery),
		chromedp.SetValue("#password", d.Password, chromedp.ByQuery),
		chromedp.Click("#signin-submit", chromedp.ByQuery),
	); err != nil {
		t.Fatalf("sign in: %v", err)
	}
	playing := `document.querySelector('article.tile[data-camera="lobby"]')?.dataset.state === 'playing'`
	if err := chromedp.Run(ctx, chromedp.Poll(playing, &ok, chromedp.WithPollingTimeout(60*time.Second),
		chromedp.WithPollingInterval(100*time.Millisecond))); err != nil {
		var text string
		_ = chromedp.Run(ctx, chromedp.Evaluate(`document.body ? document.body.innerText : ''`, &text))
		t.Fatalf("lobby tile never reached playing: %v\npage text:\n%s\nproblems: %v", err, text, problems.All())
	}

	var videoWidth float64
	if err := chromedp.Run(ctx, chromedp.Evaluate(`document.querySelector('article.tile[data-camera="lobby"] video.cordon-video').videoWidth`, &videoWidth)); err != nil {
		t.Fatal(err)
	}
	if videoWidth <= 0 {
		t.Fatalf("lobby video.videoWidth = %v, want > 0", videoWidth)
	}
	s1, err := coreEvalStats(ctx, "lobby")
	if err != nil || s1 == nil {
		t.Fatalf("cordonStats('lobby'): %v %v", s1, err)
	}
	var s2 *coreStats
	e2eutil.WaitFor(t, 10*time.Second, "15 more frames decoded (1 s of the camera)", func() bool {
		s2, err = coreEvalStats(ctx, "lobby")
		if err != nil || s2 == nil {
			t.Fatalf("cordonStats('lobby'): %v %v", s2, err)
		}
		return s2.FramesDecoded >= s1.FramesDecoded+15
	})
	t.Logf("lobby: videoWidth %v, stats %+v then %+v", videoWidth, *s1, *s2)
	if s2.FramesDecoded <= s1.FramesDecoded || s2.Width <= 0 {
		t.Fatalf("framesDecoded did not grow: %+v then %+v", *s1, *s2)
	}

	testtool.Screenshot(t, ctx, e2eArtifacts, "browser-demo.png")

	testtool.CheckPage(t, ctx, problems)

	// The demo's on-demand camera must be watchable from the page too: an
	// idle on-demand camera is not an offline one. Regression test: the
	// API reports an idle on-demand camera as online:false, and the page
	// once never opened a WHEP session for it, so nothing started the pull
	// (fixed in c9d04d5).
	t.Run("on-demand yard plays", func(t *testing.T) {
		yard := `document.querySelector('article.tile[data-camera="yard"]')?.dataset.state === 'playing'`
		if err := chromedp.Run(ctx, chromedp.Poll(yard, &ok, chromedp.WithPollingTimeout(20*time.Second),
			chromedp.WithPollingInterval(200*time.Millisecond))); err != nil {
			var state string
			_ = chromedp.Run(ctx, chromedp.Evaluate(`document.querySelector('article.tile[data-camera="yard"]')?.dataset.state || ''`, &state))
			t.Fatalf("on-demand camera yard: tile state %q after 20 s, want playing (idle on-demand shown as offline, never pulled)", state)
		}
	})
}
