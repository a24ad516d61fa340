package testtool

import (
	"context"
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
)

// Browser starts a fresh headless Debian chromium (skipped locally, failed
// in CI when missing) with the flags a closed network needs, and returns a
// tab context bounded by timeout. The browser is stopped and its profile
// removed when the test ends.
func Browser(t testing.TB, timeout time.Duration) context.Context {
	t.Helper()
	execPath := Chromium(t)
	// not t.TempDir: chromium's helper processes may still write the
	// profile for a moment after exit, so it is removed with retries
	dir, err := os.MkdirTemp("", "cordon-chromium-")
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
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-default-apps", true),
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
			err := os.RemoveAll(dir)
			if err == nil {
				return
			}
			if i == 20 {
				t.Logf("leaving chromium profile %s: %v", dir, err)
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
	return ctx
}

// PageProblems collects what a page must never produce: script errors,
// exceptions and Content-Security-Policy violations.
type PageProblems struct {
	mu   sync.Mutex
	list []string
}

func (p *PageProblems) add(s string) {
	p.mu.Lock()
	p.list = append(p.list, s)
	p.mu.Unlock()
}

// All returns the problems seen so far.
func (p *PageProblems) All() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.list...)
}

// WatchPage starts collecting the tab's problems. Failed HTTP answers (403,
// 503...) are logged by the browser as network errors and are expected in
// tests; they are not problems.
func WatchPage(ctx context.Context) *PageProblems {
	p := &PageProblems{}
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
			if ev.Type == runtime.APITypeError || ev.Type == runtime.APITypeAssert ||
				strings.Contains(msg, "Content Security Policy") {
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

// Screenshot saves a full-page screenshot of the tab ctx as dir/name
// (made if missing) and logs and returns its absolute path. A screenshot
// that cannot be taken or saved fails the test (t.Errorf: the test's own
// checks still run) and returns "".
func Screenshot(t testing.TB, ctx context.Context, dir, name string) string {
	t.Helper()
	var png []byte
	if err := chromedp.Run(ctx, chromedp.FullScreenshot(&png, 100)); err != nil {
		t.Errorf("screenshot %s: %v", name, err)
		return ""
	}
	p, err := filepath.Abs(filepath.Join(dir, name))
	if err == nil {
		err = os.MkdirAll(filepath.Dir(p), 0o755)
	}
	if err == nil {
		err = os.WriteFile(p, png, 0o644)
	}
	if err != nil {
		t.Errorf("screenshot %s: %v", name, err)
		return ""
	}
	t.Logf("screenshot: %s", p)
	return p
}

// CSPProbe is a script that records the page's Content-Security-Policy
// violations in window.__cordonCSP from the first script on (CheckPage
// reads them).
const CSPProbe = `window.__cordonCSP = [];
document.addEventListener('securitypolicyviolation', (e) => {
  window.__cordonCSP.push(e.violatedDirective + ' ' + e.blockedURI);
});`

// AddCSPProbe runs CSPProbe, then extra (may be ""), at the start of every
// document the tab loads from now on.
func AddCSPProbe(extra string) chromedp.Action {
	return chromedp.ActionFunc(func(ctx context.Context) error {
		_, err := page.AddScriptToEvaluateOnNewDocument(CSPProbe + "\n" + extra).Do(ctx)
		return err
	})
}

// CheckPage fails the test for every CSP violation the probe recorded (and
// when the page has no probe) and every problem (script error, exception)
// WatchPage collected.
func CheckPage(t testing.TB, ctx context.Context, problems *PageProblems) {
	t.Helper()
	var csp []string
	if err := chromedp.Run(ctx, chromedp.Evaluate(`window.__cordonCSP`, &csp)); err != nil {
		t.Fatalf("CSP probe (AddCSPProbe) not on the page: %v", err)
	}
	for _, v := range csp {
		t.Errorf("CSP violation: %s", v)
	}
	for _, p := range problems.All() {
		t.Errorf("page problem: %s", p)
	}
}
