package web

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"cordon/internal/testtool"
)

// TestPlaybackWorker: once the playback service worker controls the page,
// a plain request for a recording (what a <video src> sends: no header)
// reaches the gateway with the page's bearer token in Authorization, and
// the token is never in a URL; every other request of the page bypasses
// the worker, so leaving the page still DELETEs the live WHEP session
// (keepalive on pagehide).
func TestPlaybackWorker(t *testing.T) {
	t.Parallel()
	g, ctx, problems := startViewer(t, true)
	if g.aus == nil {
		t.Skip("no clip (ffmpeg missing)")
	}
	signIn(ctx, t, "demo", "demo")
	waitJS(ctx, t, "lobby playing", tileState("lobby", "playing"), 10*time.Second)

	var controlled bool
	if err := chromedp.Run(ctx, chromedp.Evaluate(`import('/recutil.js').then((m) => m.playbackWorker())`, &controlled,
		func(p *runtime.EvaluateParams) *runtime.EvaluateParams { return p.WithAwaitPromise(true) })); err != nil || !controlled {
		t.Fatalf("the playback worker does not control the page: %v %v", controlled, err)
	}
	const rec = "/api/v1/cameras/lobby/recording?start=2026-11-30T14%3A02%3A00.000Z&duration=60s"
	var status float64
	if err := chromedp.Run(ctx, chromedp.Evaluate(`fetch('`+rec+`', {headers: {Range: 'bytes=0-99'}}).then((r) => r.status)`, &status,
		func(p *runtime.EvaluateParams) *runtime.EvaluateParams { return p.WithAwaitPromise(true) })); err != nil {
		t.Fatal(err)
	}
	var seen *recorded
	for _, r := range g.requests() {
		if strings.HasPrefix(r.URL, "/api/v1/cameras/lobby/recording") {
			seen = &r
		}
	}
	if seen == nil || !strings.HasPrefix(seen.Auth, "Bearer tok-") || status != http.StatusNotFound {
		t.Fatalf("recording request through the worker: %+v (status %v)", seen, status)
	}
	for _, r := range g.requests() {
		if strings.Contains(r.URL, "tok-") {
			t.Fatalf("a token in a URL: %s", r.URL)
		}
	}
	testtool.CheckPage(t, ctx, problems)

	dels := g.count(http.MethodDelete, "")
	if err := chromedp.Run(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatal(err)
	}
	testtool.WaitFor(t, 5*time.Second, "DELETE on pagehide with the worker installed", func() bool { return g.count(http.MethodDelete, "") > dels })
}
