package e2e

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v5"
	rtspbase "github.com/bluenviron/gortsplib/v5/pkg/base"

	"cordon/auth"
	"cordon/config"
	"cordon/e2e/e2eutil"
)

// Lockout on the RTSP Digest door and bounded hashing on the login door,
// through the real gateway: 20 wrong Digest guesses from one address lock
// that address only (the right answer from there is refused, from another
// address it plays), stale nonces are no guesses, and a 50-request flood
// of bad logins from one address leaves another address's login served.
// (Function over 80 lines: one scenario whose steps build on each other, on one fixture.)
func TestDoorsLockoutAndFlood(t *testing.T) {
	cam := drCam(t, "k-a", "127.0.0.115")
	cfg := e2eutil.Config(t, []e2eutil.Account{
		{Name: "bob", Password: "bob-pw-1", Cameras: []string{"k-a"}},
		{Name: "nvr", Password: "nvr-key-1", Cameras: []string{"k-a"}, APIKey: true},
	}, []config.Camera{drCamCfg(cam)})
	secret, err := auth.NewDigestSecret()
	if err != nil {
		t.Fatal(err)
	}
	cfg.Auth.APIKeys[0].RTSPDigestHA1 = auth.DigestHA1("nvr", secret)
	// a lock long enough that the test reads it before it lapses, however
	// loaded the machine
	cfg.Auth.Lockout.Base = "30s"
	g := drStart(t, cfg, "")
	base, rtsp, auditPath := g.Base, g.RTSPAddr(), cfg.Audit.Path
	drWaitAudit(t, auditPath, 0, drMatch{Event: "camera_online", Camera: "k-a"}, 15*time.Second)

	t.Run("digest-guesses-lock-that-address-only", func(t *testing.T) {
		attacker := dwRTSPDial(t, rtsp, "127.0.0.116")
		if st, _ := attacker.do("DESCRIBE", "k-a", ""); st != 401 || attacker.nonce == "" {
			t.Fatalf("challenge: %d, nonce %q (Digest must be offered)", st, attacker.nonce)
		}
		statuses := map[int]int{}
		for i := range 20 {
			st, h := attacker.do("DESCRIBE", "k-a", attacker.digest("nvr", "guess-"+strconv.Itoa(i), "DESCRIBE", "k-a"))
			statuses[st]++
			if st == 503 && h.Get("Retry-After") == "" {
				t.Errorf("guess %d: 503 without Retry-After", i+1)
			}
		}
		t.Logf("20 wrong Digest guesses from one address: %v (status: count)", statuses)
		if statuses[200] != 0 || statuses[503] == 0 || statuses[401] > cfg.Auth.Lockout.Threshold {
			t.Fatalf("answers %v: want at most %d refusals (401) before the address is locked (503)", statuses, cfg.Auth.Lockout.Threshold)
		}
		// the right answer from the locked address: refused, on this
		// connection and a new one
		if st, h := attacker.do("DESCRIBE", "k-a", attacker.digest("nvr", secret, "DESCRIBE", "k-a")); st != 503 || h.Get("Retry-After") == "" {
			t.Errorf("the right Digest from the locked address: %d (Retry-After %q), want 503 with Retry-After", st, h.Get("Retry-After"))
		}
		again := dwRTSPDial(t, rtsp, "127.0.0.116")
		if st, _ := again.do("DESCRIBE", "k-a", ""); st != 503 {
			t.Errorf("a new connection from the locked address: %d, want 503", st)
		}
		// another address: the right Digest plays (gortsplib answers the
		// challenge from the URL's credentials)
		other := dwRTSPDial(t, rtsp, "127.0.0.117")
		other.do("DESCRIBE", "k-a", "")
		if st, _ := other.do("DESCRIBE", "k-a", other.digest("nvr", secret, "DESCRIBE", "k-a")); st != 200 {
			t.Errorf("the right Digest from another address: %d, want 200", st)
		}
		u, _ := rtspbase.ParseURL("rtsp://" + rtsp + "/k-a")
		u.User = url.UserPassword("nvr", secret)
		tcp := gortsplib.ProtocolTCP
		c := &gortsplib.Client{Scheme: "rtsp", Host: rtsp, Protocol: &tcp, ReadTimeout: 10 * time.Second}
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, _, err := c.Describe(u); err != nil {
			t.Errorf("an RTSP client with the right Digest secret from 127.0.0.1: %v", err)
		}
		// the guesses were counted and audited as failed sign-ins
		lines := drAudit(t, auditPath)
		if !slices.ContainsFunc(lines, func(l drLine) bool {
			return l.s("event") == "login_failed" && l.s("protocol") == "rtsp" && l.s("remote") == "127.0.0.116"
		}) {
			t.Error("no login_failed over rtsp from the guessing address")
		}
	})

	t.Run("stale-nonces-are-no-guesses", func(t *testing.T) {
		c := dwRTSPDial(t, rtsp, "127.0.0.118")
		c.do("DESCRIBE", "k-a", "")
		for range 2 * cfg.Auth.Lockout.Threshold {
			c.nonce = "0123456789abcdef0123456789abcdef" // not one this connection was given
			st, h := c.do("DESCRIBE", "k-a", c.digest("nvr", "wrong", "DESCRIBE", "k-a"))
			if st != 401 || !containsFold(h.Values("WWW-Authenticate"), "stale") {
				t.Fatalf("a foreign nonce: %d %v, want 401 stale", st, h.Values("WWW-Authenticate"))
			}
		}
		if st, _ := c.do("DESCRIBE", "k-a", c.digest("nvr", secret, "DESCRIBE", "k-a")); st != 200 {
			t.Errorf("after %d stale answers, the right Digest: %d, want 200 (stale nonces are not failures)", 2*cfg.Auth.Lockout.Threshold, st)
		}
	})

	t.Run("whep-bearer-failures-lock-that-address-only", func(t *testing.T) {
		offer := drOffer(t)
		post := func(src, key string) drResp {
			return drDo(t, src, http.MethodPost, base+"/whep/k-a", map[string]string{"Authorization": bearer(key), "Content-Type": "application/sdp"}, offer)
		}
		statuses := map[int]int{}
		for i := range 10 {
			statuses[post("127.0.0.122", "key:nvr:wrong-"+strconv.Itoa(i)).Status]++
		}
		if statuses[http.StatusTooManyRequests] == 0 || statuses[http.StatusCreated] != 0 {
			t.Fatalf("10 wrong API keys on WHEP from one address: %v, want 401s then 429s", statuses)
		}
		if r := post("127.0.0.122", "key:nvr:nvr-key-1"); r.Status != http.StatusTooManyRequests || r.Header.Get("Retry-After") == "" {
			t.Errorf("the right key from the locked address: %s (Retry-After %q), want 429", r, r.Header.Get("Retry-After"))
		}
		r := post("127.0.0.123", "key:nvr:nvr-key-1")
		if r.Status != http.StatusCreated {
			t.Errorf("the right key from another address: %s, want 201", r)
		} else {
			drDo(t, "127.0.0.123", http.MethodDelete, base+r.Header.Get("Location"), map[string]string{"Authorization": bearer("key:nvr:nvr-key-1")}, "")
		}
	})

	t.Run("login-flood-leaves-other-addresses-served", func(t *testing.T) {
		// a login with nothing else going on, for comparison
		start := time.Now()
		if r := drLogin(t, "127.0.0.120", base, "bob", "bob-pw-1"); r.Status != 200 {
			t.Fatalf("baseline login: %s", r)
		}
		quiet := time.Since(start)

		const flood = 50
		var wg sync.WaitGroup
		var mu sync.Mutex
		statuses := map[int]int{}
		first := make(chan struct{})
		var once sync.Once
		go_ := make(chan struct{})
		for i := range flood {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-go_
				st := dwLoginStatus("127.0.0.119", base, "bob", fmt.Sprintf("flood-%d", i))
				mu.Lock()
				statuses[st]++
				mu.Unlock()
				once.Do(func() { close(first) })
			}()
		}
		close(go_)
		<-first // the flood is being answered
		mu.Lock()
		outstanding := flood
		for _, n := range statuses {
			outstanding -= n
		}
		mu.Unlock()
		start = time.Now()
		r := drLogin(t, "127.0.0.121", base, "bob", "bob-pw-1")
		during := time.Since(start)
		wg.Wait()
		t.Logf("login from a clean address: %v alone, %v during a %d-request flood from another address (%d of its requests still unanswered when it started; the flood got %v)",
			quiet.Round(time.Millisecond), during.Round(time.Millisecond), flood, outstanding, statuses)
		if r.Status != http.StatusOK {
			t.Errorf("the clean address's login during the flood: %s, want 200", r)
		}
		if statuses[http.StatusOK] != 0 {
			t.Errorf("flood answers %v", statuses)
		}
		// the flooding address is locked, another still signs in
		if r := drLogin(t, "127.0.0.119", base, "bob", "bob-pw-1"); r.Status != http.StatusTooManyRequests {
			t.Errorf("the flooding address with the right password: %s, want 429", r)
		}
	})
}

func containsFold(vals []string, sub string) bool {
	return slices.ContainsFunc(vals, func(v string) bool { return strings.Contains(strings.ToLower(v), sub) })
}

// dwLoginStatus posts a login from src and returns the status (0 when
// the request failed); safe off the test goroutine.
func dwLoginStatus(src, base, user, password string) int {
	body := fmt.Sprintf(`{"username":%q,"password":%q}`, user, password)
	req, err := http.NewRequest(http.MethodPost, base+"/api/v1/login", strings.NewReader(body))
	if err != nil {
		return 0
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := drClient(src).Do(req)
	if err != nil {
		return 0
	}
	_ = resp.Body.Close()
	return resp.StatusCode
}
