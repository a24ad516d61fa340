package e2e

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"cordon/gateway"
	"cordon/internal/testtool"
)

// coreBrowser starts a fresh headless chromium and returns a tab context
// bounded by timeout. Everything is stopped and the profile removed at
// cleanup.
func coreBrowser(t *testing.T, timeout time.Duration) context.Context {
	t.Helper()
	execPath := testtool.Chromium(t)
	// not t.TempDir: chromium helpers may write the profile for a moment
	// after exit; removed with retries below
	dir, err := os.MkdirTemp("", "cordon-e2e-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(execPath),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.UserDataDir(dir),
		chromedp.WindowSize(1400, 900),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("no-proxy-server", true),
		chromedp.Flag("autoplay-policy", "no-user-gesture-required"),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(actx)
	ctx, cancelTimeout := context.WithTimeout(ctx, timeout)
	t.Cleanup(func() {
		cancelTimeout()
		cancelTab()
		cancelAlloc() // waits for chromium to exit
		for i := 0; ; i++ {
			if err := os.RemoveAll(dir); err == nil {
				return
			} else if i == 20 {
				t.Logf("leaving chromium profile %s: %v", dir, err)
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
	return ctx
}

// corePageProblems collects CSP violations, script errors and exceptions
// reported by the page.
type corePageProblems struct {
	mu   sync.Mutex
	list []string
}

func (p *corePageProblems) add(s string) {
	p.mu.Lock()
	p.list = append(p.list, s)
	p.mu.Unlock()
}

func (p *corePageProblems) all() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.list...)
}

func coreWatchPage(ctx context.Context) *corePageProblems {
	p := &corePageProblems{}
	chromedp.ListenTarget(ctx, func(ev any) {
		switch ev := ev.(type) {
		case *runtime.EventExceptionThrown:
			p.add("exception: " + ev.ExceptionDetails.Error())
		case *runtime.EventConsoleAPICalled:
			var parts []string
			for _, a := range ev.Args {
				parts = append(parts, string(a.Value)+a.Description)
			}
			msg := strings.Join(parts, " ")
			if ev.Type == runtime.APITypeError || ev.Type == runtime.APITypeAssert || strings.Contains(msg, "Content Security Policy") {
				p.add("console." + string(ev.Type) + ": " + msg)
			}
		case *log.EventEntryAdded:
			e := ev.Entry
			if strings.Contains(e.Text, "Content Security Policy") || strings.Contains(e.Text, "Refused to") ||
				(e.Level == log.LevelError && e.Source != log.SourceNetwork) {
				p.add("log[" + string(e.Source) + "]: " + e.Text)
			}
		}
	})
	return p
}

// cspListener records securitypolicyviolation events from the first script
// on.
const coreCSPProbe = `window.__cordonCSP = [];
document.addEventListener('securitypolicyviolation', (e) => {
  window.__cordonCSP.push(e.violatedDirective + ' ' + e.blockedURI);
});`

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

// TestBrowserPlaysDemo: the real `cordon demo` (gateway.StartDemo on
// ephemeral loopback ports) in headless chromium: sign in through the form
// with the demo credentials, the lobby tile reaches "playing", the video
// has a size, framesDecoded grows over 2 s, and the page reports no CSP
// violation, script error or exception. Screenshot:
// e2e/artifacts/browser-demo.png.
func TestBrowserPlaysDemo(t *testing.T) {
	d, err := gateway.StartDemo(gateway.DemoOptions{
		HTTPListen: "127.0.0.1:0", RTSPListen: "127.0.0.1:0", WebRTCListen: "127.0.0.1:0", MetricsListen: "127.0.0.1:0",
		StateDir: filepath.Join(t.TempDir(), "state"),
		Logger:   slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatalf("StartDemo: %v", err)
	}
	t.Cleanup(d.Close)
	if !strings.HasPrefix(d.URL, "http://127.0.0.1:") {
		t.Fatalf("demo URL %q is not plain HTTP on loopback", d.URL)
	}

	ctx := coreBrowser(t, 120*time.Second)
	problems := coreWatchPage(ctx)
	if err := chromedp.Run(ctx,
		chromedp.ActionFunc(func(ctx context.Context) error {
			_, err := page.AddScriptToEvaluateOnNewDocument(coreCSPProbe).Do(ctx)
			return err
		}),
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
		t.Fatalf("lobby tile never reached playing: %v\npage text:\n%s\nproblems: %v", err, text, problems.all())
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
	time.Sleep(2 * time.Second)
	s2, err := coreEvalStats(ctx, "lobby")
	if err != nil || s2 == nil {
		t.Fatalf("cordonStats('lobby'): %v %v", s2, err)
	}
	t.Logf("lobby: videoWidth %v, stats %+v then %+v", videoWidth, *s1, *s2)
	if s2.FramesDecoded <= s1.FramesDecoded || s2.Width <= 0 {
		t.Fatalf("framesDecoded did not grow over 2 s: %+v then %+v", *s1, *s2)
	}

	dir := "artifacts" // e2e/artifacts (gitignored)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	var png []byte
	if err := chromedp.Run(ctx, chromedp.FullScreenshot(&png, 100)); err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	shot, _ := filepath.Abs(filepath.Join(dir, "browser-demo.png"))
	if err := os.WriteFile(shot, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", shot)

	var csp []string
	if err := chromedp.Run(ctx, chromedp.Evaluate(`window.__cordonCSP`, &csp)); err != nil {
		t.Fatal(err)
	}
	for _, v := range csp {
		t.Errorf("CSP violation: %s", v)
	}
	for _, p := range problems.all() {
		t.Errorf("page problem: %s", p)
	}

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
