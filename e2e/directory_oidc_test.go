package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/security"
	"github.com/chromedp/chromedp"

	"cordon/config"
	"cordon/e2e/e2eutil"
	"cordon/internal/testtool"
	"cordon/internal/testtool/oidcop"
)

// dwOIDCSignIn goes through a whole sign-in as a browser would (the
// gateway's login, the provider's login form, the callback, the viewer's
// hand-off exchange) with an HTTP client, and returns the session token,
// its expiry and every URL the browser visited.
type dwOIDCResult struct {
	Token   string
	Expires time.Time
	User    string
	Visited []*url.URL
	Client  *http.Client
}

func dwOIDCSignIn(t *testing.T, idp *oidcop.Provider, g *e2eutil.Gateway, user, password string) dwOIDCResult {
	t.Helper()
	res, resp := dwOIDCStart(t, idp, g, user, password)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Request.URL.Path != "/" {
		t.Fatalf("sign-in of %s ended with %d at %s", user, resp.StatusCode, resp.Request.URL.Redacted())
	}
	ex := dwExchange(t, res.Client, g)
	if ex.Status != http.StatusOK {
		t.Fatalf("exchange: %s", ex)
	}
	var out struct {
		Token     string `json:"token"`
		ExpiresAt string `json:"expires_at"`
		User      string `json:"user"`
	}
	if err := json.Unmarshal([]byte(ex.Body), &out); err != nil || out.Token == "" {
		t.Fatalf("exchange answer %s: %v", ex.Body, err)
	}
	res.Token, res.User = out.Token, out.User
	var err error
	if res.Expires, err = time.Parse(time.RFC3339, out.ExpiresAt); err != nil {
		t.Fatal(err)
	}
	for _, u := range res.Visited {
		if strings.Contains(u.String(), out.Token) {
			t.Fatalf("the session token appeared in a URL: %s", u.Redacted())
		}
	}
	return res
}

// dwOIDCStart runs the sign-in up to the last redirect and returns its
// final response (body unread).
func dwOIDCStart(t *testing.T, idp *oidcop.Provider, g *e2eutil.Gateway, user, password string) (dwOIDCResult, *http.Response) {
	t.Helper()
	var res dwOIDCResult
	res.Client = idp.BrowserClient()
	res.Client.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		res.Visited = append(res.Visited, req.URL)
		if len(via) > 10 {
			return http.ErrUseLastResponse
		}
		return nil
	}
	resp, err := idp.Login(res.Client, g.Base+"/api/v1/oidc/login?return_to=/", user, password)
	if err != nil {
		t.Fatalf("sign-in of %s at the provider: %v", user, err)
	}
	return res, resp
}

func dwExchange(t *testing.T, c *http.Client, g *e2eutil.Gateway) drResp {
	t.Helper()
	resp, err := c.Post(g.Base+"/api/v1/oidc/exchange", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return drResp{resp.StatusCode, resp.Header, string(b)}
}

func dwCallbackURL(t *testing.T, visited []*url.URL) *url.URL {
	t.Helper()
	for _, u := range visited {
		if u.Path == "/api/v1/oidc/callback" {
			return u
		}
	}
	t.Fatal("the sign-in never reached the callback")
	return nil
}

// OIDC through the real gateway and a real provider, with an HTTP client
// as the browser: the session token reaches the viewer only through the
// one-time hand-off (never in a URL), works for WHEP, dies at logout; a
// replayed callback, a second exchange and an ID token for another
// audience are refused; a person in no mapped group signs in with no
// rights.
func TestDirectoryOIDCSignIn(t *testing.T) {
	idp := dwIdP(t)
	cam := coreCam(t, "dir-cam4", "127.0.0.53", false)
	g := dwStart(t, dwSetup{IdP: idp, Cams: []config.Camera{camCfg(cam, false)}})

	r := dwOIDCSignIn(t, idp, g, "olga", "olga-idp-pw-1")
	if after := time.Now(); r.User != "olga" || r.Expires.After(after.Add(time.Hour)) || !r.Expires.After(after) {
		t.Fatalf("signed in as %q until %v (token_ttl 1h, ID tokens 1h)", r.User, r.Expires)
	}
	if me := dwWhoAmI(t, g.Base, r.Token); me.Source != "oidc" || len(me.Roles) != 1 || me.Roles[0] != "operator" {
		t.Fatalf("me: %+v", me)
	}
	v, status, body := e2eutil.Dial(t, g.Base, "dir-cam4", r.Token, e2eutil.ViewerOptions{})
	if v == nil {
		t.Fatalf("WHEP as olga: %d %s", status, body)
	}
	v.NextAU(t, 20*time.Second)
	if !dwAuditHas(t, g.Config.Audit.Path, map[string]string{"event": "login_ok", "actor": "olga", "source": "oidc"}) {
		t.Fatal("no login_ok with source oidc")
	}

	t.Run("hand-off is single use", func(t *testing.T) {
		if ex := dwExchange(t, r.Client, g); ex.Status != http.StatusUnauthorized {
			t.Fatalf("second exchange: %s", ex)
		}
	})
	t.Run("replayed callback refused", func(t *testing.T) {
		cb := dwCallbackURL(t, r.Visited)
		resp, err := r.Client.Get(cb.String())
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(b), "already used") {
			t.Fatalf("replayed callback: %d %s", resp.StatusCode, b)
		}
		if ex := dwExchange(t, r.Client, g); ex.Status != http.StatusUnauthorized {
			t.Fatalf("exchange after a replayed callback: %s", ex)
		}
	})
	t.Run("wrong audience refused", func(t *testing.T) {
		idp.SetTokenHook(func(tok string) string {
			claims, err := oidcop.Claims(tok)
			if err != nil {
				return tok
			}
			claims["aud"] = "another-client"
			forged, err := idp.Sign(claims)
			if err != nil {
				return tok
			}
			return forged
		})
		defer idp.SetTokenHook(nil)
		res, resp := dwOIDCStart(t, idp, g, "olga", "olga-idp-pw-1")
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(string(b), "failed") {
			t.Fatalf("ID token for another audience: %d %s", resp.StatusCode, b)
		}
		if ex := dwExchange(t, res.Client, g); ex.Status != http.StatusUnauthorized {
			t.Fatalf("exchange after a refused sign-in: %s", ex)
		}
		// failed sign-ins are aggregated per address, written by the
		// aggregator's own goroutine
		e2eutil.WaitFor(t, 10*time.Second, "login_failed with source oidc", func() bool {
			return dwAuditHas(t, g.Config.Audit.Path, map[string]string{"event": "login_failed", "source": "oidc"})
		})
	})
	t.Run("no mapped group", func(t *testing.T) {
		n := dwOIDCSignIn(t, idp, g, "nils", "nils-idp-pw-1")
		if me := dwWhoAmI(t, g.Base, n.Token); me.Name != "nils" || len(me.Roles) != 0 {
			t.Fatalf("nils: %+v", me)
		}
		if cams := coreCameras(t, g.Base, n.Token); len(cams) != 0 {
			t.Fatalf("nils sees %v", cams)
		}
		if v, status, body := e2eutil.Dial(t, g.Base, "dir-cam4", n.Token, e2eutil.ViewerOptions{}); v != nil || status != http.StatusForbidden {
			t.Fatalf("WHEP as nils: %d %s", status, body)
		}
	})
	t.Run("logout revokes", func(t *testing.T) {
		if r2 := dwDo(t, "127.0.0.54", http.MethodPost, g.Base+"/api/v1/logout", r.Token, ""); r2.Status != http.StatusNoContent {
			t.Fatalf("logout: %s", r2)
		}
		for _, p := range []string{"/api/v1/cameras", "/api/v1/me"} {
			if r2 := dwDo(t, "127.0.0.54", http.MethodGet, g.Base+p, r.Token, ""); r2.Status != http.StatusUnauthorized {
				t.Fatalf("%s after logout: %s", p, r2)
			}
		}
		if v, status, _ := e2eutil.Dial(t, g.Base, "dir-cam4", r.Token, e2eutil.ViewerOptions{}); v != nil || status != http.StatusUnauthorized {
			t.Fatalf("WHEP after logout: %d", status)
		}
	})
}

// An OIDC session ends with its ID token: the live WHEP session of a
// person whose ID token expired ends within 5 s of the expiry.
func TestDirectoryOIDCSessionEndsWithIDToken(t *testing.T) {
	idp := dwIdP(t)
	cam := coreCam(t, "dir-cam5", "127.0.0.55", false)
	g := dwStart(t, dwSetup{IdP: idp, Cams: []config.Camera{camCfg(cam, false)}})
	idp.SetIDTokenLifetime(8 * time.Second)
	defer idp.SetIDTokenLifetime(time.Hour)
	r := dwOIDCSignIn(t, idp, g, "olga", "olga-idp-pw-1")
	if left := time.Until(r.Expires); left > 9*time.Second {
		t.Fatalf("session token lives %v, the ID token 8s", left)
	}
	v, status, body := e2eutil.Dial(t, g.Base, "dir-cam5", r.Token, e2eutil.ViewerOptions{})
	if v == nil {
		t.Fatalf("WHEP: %d %s", status, body)
	}
	w := drWatch(t, v)
	w.waitFlowing(t, 3, 20*time.Second)
	// expires_at is whole seconds, rounded down
	e2eutil.WaitFor(t, time.Until(r.Expires)+6*time.Second, "the session to end with the ID token", func() bool {
		return dwSessionsOf(g, "olga") == 0
	})
	w.endedWithin(t, r.Expires, 5*time.Second)
}

// A person in headless chromium: the viewer offers "Sign in with <provider>",
// the provider's own login page signs them in, the viewer receives the
// token through the hand-off and plays the camera (framesDecoded grows);
// the provider rotates its signing key (dropping the old one) and the next
// sign-in still works; a person in no mapped group sees a plain no-rights
// message. No CSP violation, script error or token in the address bar.
func TestDirectoryOIDCBrowser(t *testing.T) {
	idp := dwIdP(t)
	cam := coreCam(t, "dir-cam6", "127.0.0.56", false)
	g := dwStart(t, dwSetup{IdP: idp, Cams: []config.Camera{camCfg(cam, false)}})
	ctx := testtool.Browser(t, 180*time.Second)
	problems := testtool.WatchPage(ctx)
	if err := chromedp.Run(ctx,
		// the provider's certificate is from its test CA; cordon itself
		// verifies it against ca_file
		security.SetIgnoreCertificateErrors(true),
		testtool.AddCSPProbe(""),
		chromedp.Navigate(g.Base+"/"),
	); err != nil {
		t.Fatal(err)
	}

	signIn := func(user, password string) {
		t.Helper()
		var label string
		if err := chromedp.Run(ctx,
			chromedp.WaitVisible("#signin-oidc", chromedp.ByID),
			chromedp.Text("#signin-oidc", &label, chromedp.ByID),
			chromedp.Click("#signin-oidc", chromedp.ByID),
			chromedp.WaitVisible("#username", chromedp.ByID),
			chromedp.SendKeys("#username", user, chromedp.ByID),
			chromedp.SendKeys("#password", password, chromedp.ByID),
			chromedp.Click("#login", chromedp.ByID),
			chromedp.WaitVisible("#viewer", chromedp.ByID),
		); err != nil {
			var text string
			_ = chromedp.Run(ctx, chromedp.Evaluate(`document.body ? document.body.innerText : ''`, &text))
			t.Fatalf("sign in as %s: %v\npage:\n%s", user, err, text)
		}
		if label != "Sign in with "+dwIdPName {
			t.Errorf("button says %q", label)
		}
		var href, who string
		if err := chromedp.Run(ctx, chromedp.Location(&href), chromedp.Text("#session-user", &who, chromedp.ByID)); err != nil {
			t.Fatal(err)
		}
		if href != g.Base+"/" {
			t.Errorf("address bar after the sign-in: %q, want %q (no marker, no code, no token)", href, g.Base+"/")
		}
		if who != user {
			t.Errorf("signed in as %q, want %q", who, user)
		}
	}
	plays := func() {
		t.Helper()
		var ok bool
		playing := `document.querySelector('article.tile[data-camera="dir-cam6"]')?.dataset.state === 'playing'`
		if err := chromedp.Run(ctx, chromedp.Poll(playing, &ok, chromedp.WithPollingTimeout(60*time.Second),
			chromedp.WithPollingInterval(100*time.Millisecond))); err != nil {
			t.Fatalf("the camera never played: %v (%v)", err, problems.All())
		}
		s1, err := coreEvalStats(ctx, "dir-cam6")
		if err != nil || s1 == nil {
			t.Fatalf("cordonStats: %v %v", s1, err)
		}
		e2eutil.WaitFor(t, 15*time.Second, "15 more frames decoded", func() bool {
			s2, err := coreEvalStats(ctx, "dir-cam6")
			return err == nil && s2 != nil && s2.FramesDecoded >= s1.FramesDecoded+15
		})
	}
	signOut := func() {
		t.Helper()
		if err := chromedp.Run(ctx, chromedp.Click("#signout", chromedp.ByID), chromedp.WaitVisible("#signin", chromedp.ByID)); err != nil {
			t.Fatal(err)
		}
	}

	signIn("olga", "olga-idp-pw-1")
	plays()
	signOut()

	fetches := idp.KeyFetches()
	if _, err := idp.RotateKey(true); err != nil {
		t.Fatal(err)
	}
	signIn("olga", "olga-idp-pw-1")
	plays()
	if idp.KeyFetches() <= fetches {
		t.Error("the gateway did not fetch the rotated key set")
	}
	signOut()

	signIn("nils", "nils-idp-pw-1")
	var reason, text string
	if err := chromedp.Run(ctx,
		chromedp.WaitVisible(`#empty[data-reason="no-rights"]`, chromedp.ByQuery),
		chromedp.Text("#empty", &text, chromedp.ByID),
		chromedp.Evaluate(`document.getElementById('empty').dataset.reason`, &reason),
	); err != nil {
		t.Fatalf("no-rights message: %v", err)
	}
	if !strings.Contains(text, "Signed in as nils") || !strings.Contains(text, "no rights in cordon") {
		t.Errorf("no-rights message %q", text)
	}
	testtool.CheckPage(t, ctx, problems)
}
