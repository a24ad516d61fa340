package e2e

import (
	"context"
	"math"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"cordon/config"
	"cordon/democam"
	"cordon/e2e/e2eutil"
	"cordon/internal/testtool"
)

// crWHEPPosts records the WHEP offers a tab sends (path and query).
type crWHEPPosts struct {
	mu   sync.Mutex
	urls []string
}

func (w *crWHEPPosts) watch(ctx context.Context) {
	chromedp.ListenTarget(ctx, func(ev any) {
		if e, ok := ev.(*network.EventRequestWillBeSent); ok && e.Request.Method == "POST" && strings.Contains(e.Request.URL, "/whep/") {
			u, err := url.Parse(e.Request.URL)
			if err == nil {
				w.mu.Lock()
				w.urls = append(w.urls, u.RequestURI())
				w.mu.Unlock()
			}
		}
	})
}

func (w *crWHEPPosts) list() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.urls...)
}

// crEval evaluates js (awaiting a promise) into out.
func crEval(t *testing.T, ctx context.Context, js string, out any) {
	t.Helper()
	if err := chromedp.Run(ctx, chromedp.Evaluate(js, out, func(p *runtime.EvaluateParams) *runtime.EvaluateParams {
		return p.WithAwaitPromise(true)
	})); err != nil {
		t.Fatalf("evaluate %s: %v", js, err)
	}
}

// crWaitJS polls a boolean expression (which may be a promise).
func crWaitJS(t *testing.T, ctx context.Context, within time.Duration, what, js string) {
	t.Helper()
	e2eutil.WaitFor(t, within, what, func() bool {
		var ok bool
		crEval(t, ctx, js, &ok)
		return ok
	})
}

// crSignIn opens the viewer and signs in through the form.
func crSignIn(t *testing.T, ctx context.Context, base, user, password string) {
	t.Helper()
	var ok bool
	if err := chromedp.Run(ctx,
		network.Enable(),
		chromedp.Navigate(base+"/"),
		chromedp.Poll(`!document.getElementById('signin').hidden && !document.getElementById('signin-submit').disabled`, &ok,
			chromedp.WithPollingTimeout(20*time.Second)),
		chromedp.SetValue("#username", user, chromedp.ByQuery),
		chromedp.SetValue("#password", password, chromedp.ByQuery),
		chromedp.Click("#signin-submit", chromedp.ByQuery),
	); err != nil {
		t.Fatalf("sign in %s: %v", user, err)
	}
}

// crRedSpot finds the dome's red landmark in the single view's current
// frame (decoded pixels, drawn on a canvas): its mean x in a 320-wide
// picture, and how many pixels.
const crRedSpot = `(() => {
  const v = document.getElementById('single-video');
  const w = v.videoWidth, h = v.videoHeight;
  if (!w || !h) return {x: -1, n: 0, w: 0};
  const c = document.createElement('canvas');
  c.width = w; c.height = h;
  const g = c.getContext('2d');
  g.drawImage(v, 0, 0, w, h);
  const d = g.getImageData(0, 0, w, h).data;
  let sx = 0, n = 0;
  for (let y = Math.floor(h * 0.25); y < Math.floor(h * 0.75); y++) {
    for (let x = 0; x < w; x++) {
      const i = (y * w + x) * 4;
      if (d[i] > 180 && d[i + 1] < 80 && d[i + 2] < 80) { sx += x; n++; }
    }
  }
  return {x: n ? sx / n * 320 / w : -1, n, w};
})()`

type crSpot struct {
	X float64 `json:"x"`
	N int     `json:"n"`
	W int     `json:"w"`
}

// crCenter returns the centre of an element in CSS pixels.
func crCenter(t *testing.T, ctx context.Context, sel string) (float64, float64) {
	t.Helper()
	var r struct{ X, Y float64 }
	crEval(t, ctx, `(() => { const b = document.querySelector('`+sel+`').getBoundingClientRect(); return {X: b.x + b.width / 2, Y: b.y + b.height / 2}; })()`, &r)
	return r.X, r.Y
}

func crMouse(t *testing.T, ctx context.Context, typ input.MouseType, x, y float64) {
	t.Helper()
	if err := chromedp.Run(ctx, chromedp.MouseEvent(typ, x, y, chromedp.ButtonLeft, chromedp.ClickCount(1))); err != nil {
		t.Fatalf("mouse %s: %v", typ, err)
	}
}

func crKey(t *testing.T, ctx context.Context, typ input.KeyType, key, code string, vk int64) {
	t.Helper()
	if err := chromedp.Run(ctx, chromedp.ActionFunc(func(ctx context.Context) error {
		return input.DispatchKeyEvent(typ).WithKey(key).WithCode(code).WithWindowsVirtualKeyCode(vk).Do(ctx)
	})); err != nil {
		t.Fatalf("key %s %s: %v", typ, key, err)
	}
}

// The control room in headless chromium against the real gateway: the grid
// plays sub streams (?stream=sub, 160x90 for the dome), a click opens the
// single view on the main stream (320x180) with the grid's picture kept
// until the main stream has a frame; holding "pan right" moves democam's
// dome and the picture (its red landmark moves as far as the dome's pan
// says); the arrow keys steer without a mouse; a second user sees who holds
// control and is refused; Esc goes back; a B-frame camera's single view
// falls back to its sub stream after the 422.
// (Function over 80 lines: one scenario whose steps build on each other, on one fixture.)
func TestControlRoomBrowser(t *testing.T) {
	dome := crDome(t, "127.0.0.142")
	bmain := &democam.Camera{ID: "bcam", Listen: "127.0.0.143:0", Path: "main", Username: "cam", Password: "cam-bcam-pw", Quirks: democam.Quirks{BFrames: true}}
	bsub := &democam.Camera{ID: "bcam-sub", Listen: "127.0.0.143:0", Path: "sub", Username: "cam", Password: "cam-bcam-pw"}
	for _, c := range []*democam.Camera{bmain, bsub} {
		if err := c.Initialize(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Close)
	}
	cfg := crConfig(t, []crAccount{
		{name: "simon", password: "simon-pw-1", roles: []string{"supervisor"}},
		{name: "olivia", password: "olivia-pw-1", roles: []string{"operator"}},
	}, nil)
	cfg.Cameras = []config.Camera{crDomeCfg(dome, "dome"),
		{ID: "bcam", Name: "B-frame camera", URL: bmain.URL(), SubURL: bsub.URL(), Username: "cam", Password: "cam-bcam-pw", Transport: "tcp", OnDemand: true}}
	g := e2eutil.Start(t, cfg)

	ctx := testtool.Browser(t, 180*time.Second)
	problems := testtool.WatchPage(ctx)
	posts := &crWHEPPosts{}
	posts.watch(ctx)
	crSignIn(t, ctx, g.Base, "simon", "simon-pw-1")

	// the grid: sub streams
	for _, id := range []string{"dome", "bcam"} {
		crWaitJS(t, ctx, 60*time.Second, id+" tile playing",
			`document.querySelector('article.tile[data-camera="`+id+`"]')?.dataset.state === 'playing'`)
	}
	var tile coreStats
	crEval(t, ctx, `window.cordonStats('dome')`, &tile)
	if tile.Width != democamSubWidth {
		t.Fatalf("dome tile plays a %v-wide picture, want the %d-wide sub stream", tile.Width, democamSubWidth)
	}

	// the single view: main stream, the grid's picture kept until it plays
	crEval(t, ctx, `(() => {
	  window.__cr = {previewAtOpen: false, previewAtLive: null};
	  document.addEventListener('cordon:single-open', (e) => {
	    window.__cr.previewAtOpen = document.getElementById('single').classList.contains('has-preview') &&
	      document.getElementById('single-preview').srcObject !== null;
	    window.__cr.open = {camera: e.detail.camera, rights: e.detail.rights, container: e.detail.container.id};
	  });
	  document.addEventListener('playing', (e) => {
	    if (e.target.id === 'single-video' && window.__cr.previewAtLive === null) {
	      window.__cr.previewAtLive = document.getElementById('single').classList.contains('has-preview') &&
	        document.getElementById('single-preview').videoWidth > 0;
	    }
	  }, true);
	  return true;
	})()`, new(bool))
	if err := chromedp.Run(ctx, chromedp.Click(`article.tile[data-camera="dome"]`, chromedp.ByQuery)); err != nil {
		t.Fatal(err)
	}
	crWaitJS(t, ctx, 60*time.Second, "the single view playing the dome's main stream",
		`window.cordonSingleStats().then((s) => s.state === 'playing' && s.stream === 'main' && s.width === 320 && s.camera === 'dome')`)
	var hook struct {
		PreviewAtOpen bool  `json:"previewAtOpen"`
		PreviewAtLive *bool `json:"previewAtLive"`
		Open          struct {
			Camera    string   `json:"camera"`
			Rights    []string `json:"rights"`
			Container string   `json:"container"`
		} `json:"open"`
	}
	crEval(t, ctx, `window.__cr`, &hook)
	if !hook.PreviewAtOpen || hook.PreviewAtLive == nil || !*hook.PreviewAtLive {
		t.Errorf("switching to the main stream: preview at open %v, still shown when the main stream played %v (want both: no black frame)",
			hook.PreviewAtOpen, hook.PreviewAtLive)
	}
	if hook.Open.Camera != "dome" || hook.Open.Container != "single-recordings" || !strings.Contains(strings.Join(hook.Open.Rights, ","), "ptz") {
		t.Errorf("cordon:single-open detail %+v", hook.Open)
	}
	crWaitJS(t, ctx, 10*time.Second, "the PTZ pad, control free",
		`!document.getElementById('ptz-pad').hidden && document.getElementById('ptz-holder').textContent === 'Control: free'`)

	// hold "pan right": the dome pans and the picture follows
	var at0 crSpot
	crEval(t, ctx, crRedSpot, &at0)
	if at0.N < 50 || math.Abs(at0.X-160) > 3 {
		t.Fatalf("red landmark at home: %+v, want the centre of the picture", at0)
	}
	x, y := crCenter(t, ctx, `[data-ptz="right"]`)
	crMouse(t, ctx, input.MousePressed, x, y)
	e2eutil.WaitFor(t, 10*time.Second, "the dome to pan right while the button is held", func() bool {
		p, _, _, _ := dome.Position()
		return p >= 0.08
	})
	crMouse(t, ctx, input.MouseReleased, x, y)
	e2eutil.WaitFor(t, 5*time.Second, "the dome to stop on release", func() bool { _, _, _, moving := dome.Position(); return !moving })
	pan, _, _, _ := dome.Position()
	if pan > 0.6 {
		t.Fatalf("pan %.3f: the release did not stop the dome", pan)
	}
	// the red landmark (radius 26) moves left by pan x 480 pixels; near the
	// edge (a slow release) only part of it is in view
	want := 160 - pan*960/2
	var at1 crSpot
	e2eutil.WaitFor(t, 10*time.Second, "the picture to show the dome's new position", func() bool {
		crEval(t, ctx, crRedSpot, &at1)
		if want-26 < 0 {
			return at1.N == 0 || (at1.X < want+26 && at1.X < at0.X-100)
		}
		return at1.N > 50 && math.Abs(at1.X-want) <= 3
	})
	t.Logf("pan %.3f: red landmark from x=%.1f to x=%.1f (want %.1f)", pan, at0.X, at1.X, want)
	testtool.Screenshot(t, ctx, e2eArtifacts, "controlroom-ptz.png")
	crWaitJS(t, ctx, 5*time.Second, "the pad to show simon's control",
		`document.getElementById('ptz-holder').textContent.startsWith('You have control until')`)

	// the keyboard: hold ArrowLeft
	crKey(t, ctx, input.KeyDown, "ArrowLeft", "ArrowLeft", 37)
	e2eutil.WaitFor(t, 10*time.Second, "the dome to pan left on the arrow key", func() bool {
		p, _, _, _ := dome.Position()
		return p < pan-0.05
	})
	crKey(t, ctx, input.KeyUp, "ArrowLeft", "ArrowLeft", 37)
	e2eutil.WaitFor(t, 5*time.Second, "the dome to stop on key up", func() bool { _, _, _, moving := dome.Position(); return !moving })

	// a second user (lower priority) sees who holds control, and is refused
	crMouse(t, ctx, input.MousePressed, x, y) // simon holds "right" meanwhile
	ctx2, cancel2 := chromedp.NewContext(ctx)
	defer cancel2()
	problems2 := testtool.WatchPage(ctx2)
	crSignIn(t, ctx2, g.Base, "olivia", "olivia-pw-1")
	crWaitJS(t, ctx2, 30*time.Second, "olivia's grid", `!!document.querySelector('article.tile[data-camera="dome"]')`)
	crEval(t, ctx2, `document.querySelector('article.tile[data-camera="dome"]').focus(), true`, new(bool))
	crKey(t, ctx2, input.KeyDown, "Enter", "Enter", 13)
	crKey(t, ctx2, input.KeyUp, "Enter", "Enter", 13)
	crWaitJS(t, ctx2, 30*time.Second, "olivia's pad showing simon's control",
		`document.getElementById('ptz-holder').dataset.holder === 'simon' && document.getElementById('ptz-holder').textContent.startsWith('simon has control until')`)
	x2, y2 := crCenter(t, ctx2, `[data-ptz="up"]`)
	crMouse(t, ctx2, input.MousePressed, x2, y2)
	crWaitJS(t, ctx2, 10*time.Second, "the conflict shown to olivia",
		`!document.getElementById('ptz-alert').hidden && document.getElementById('ptz-alert').textContent.startsWith('simon has control until')`)
	crMouse(t, ctx2, input.MouseReleased, x2, y2)
	crMouse(t, ctx, input.MouseReleased, x, y)
	testtool.Screenshot(t, ctx2, e2eArtifacts, "controlroom-second-user.png")
	for _, p := range problems2.All() {
		t.Errorf("second user's page: %s", p)
	}

	// Esc: back to the grid, focus on the tile; Enter opens it again
	crKey(t, ctx, input.KeyDown, "Escape", "Escape", 27)
	crKey(t, ctx, input.KeyUp, "Escape", "Escape", 27)
	crWaitJS(t, ctx, 10*time.Second, "the grid back after Esc",
		`document.getElementById('single').hidden && !document.getElementById('viewer').hidden && document.activeElement?.dataset?.camera === 'dome'`)

	// the B-frame camera: its main stream answers 422, the single view
	// falls back to the sub stream
	crEval(t, ctx, `document.querySelector('article.tile[data-camera="bcam"]').focus(), true`, new(bool))
	crKey(t, ctx, input.KeyDown, "Enter", "Enter", 13)
	crKey(t, ctx, input.KeyUp, "Enter", "Enter", 13)
	crWaitJS(t, ctx, 60*time.Second, "the B-frame camera's single view on its sub stream",
		`window.cordonSingleStats().then((s) => s.camera === 'bcam' && s.state === 'playing' && s.stream === 'sub')`)
	var streamText string
	crEval(t, ctx, `document.getElementById('single-stream').textContent`, &streamText)
	if !strings.Contains(streamText, "B-frames") {
		t.Errorf("single view stream label %q does not say why", streamText)
	}
	testtool.Screenshot(t, ctx, e2eArtifacts, "controlroom-single.png")

	// what the page asked for: the grid the sub streams, the single view
	// the main stream (and the B-frame camera's main once, then its sub)
	got := strings.Join(posts.list(), " ")
	for _, want := range []string{"/whep/dome?stream=sub", "/whep/bcam?stream=sub", "/whep/dome ", "/whep/bcam "} {
		if !strings.Contains(got+" ", want) {
			t.Errorf("WHEP offers %q lack %q", got, strings.TrimSpace(want))
		}
	}
	for _, p := range problems.All() {
		t.Errorf("page problem: %s", p)
	}
}

// democamSubWidth is the width of democam's PTZ sub stream.
const democamSubWidth = 160
