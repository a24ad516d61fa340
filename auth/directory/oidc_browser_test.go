package directory

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/security"
	"github.com/chromedp/chromedp"

	"cordon/internal/testtool"
)

// A person in headless chromium goes through the provider's real login
// page: cordon's login redirect, the form, the provider's redirect back to
// the callback, and cordon's return_to page.
func TestOIDCBrowserSignIn(t *testing.T) {
	e := newRP(t, nil)
	ctx := testtool.Browser(t, 60*time.Second)
	problems := testtool.WatchPage(ctx)
	var body, url string
	err := chromedp.Run(ctx,
		// the provider's certificate is from the test CA; cordon's own
		// client verifies it against ca_file
		security.SetIgnoreCertificateErrors(true),
		chromedp.Navigate(e.loginURL()),
		chromedp.WaitVisible("#username", chromedp.ByID),
		chromedp.SendKeys("#username", "alice", chromedp.ByID),
		chromedp.SendKeys("#password", "alice-idp-1", chromedp.ByID),
		chromedp.Click("#login", chromedp.ByID),
		chromedp.WaitReady(`//body[contains(., "cordon cameras page")]`),
		chromedp.Text("body", &body, chromedp.ByQuery),
		chromedp.Location(&url),
	)
	if err != nil {
		t.Fatalf("browser sign-in: %v (page: %q at %s)", err, body, url)
	}
	if !strings.HasSuffix(url, "/cameras") {
		t.Errorf("ended at %s", url)
	}
	ids := e.signedIn()
	if len(ids) != 1 || ids[0].Name != "alice" || len(ids[0].Roles) != 1 {
		t.Errorf("identities %+v", ids)
	}
	for _, p := range problems.All() {
		t.Errorf("page problem: %s", p)
	}
}
