package web

import (
	"bytes"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"path"
	"regexp"
	"sort"
	"strings"
	"testing"

	"golang.org/x/net/html"
)

func serve(t *testing.T, h http.Handler, method, target string, hdr map[string]string) *http.Response {
	t.Helper()
	req := httptest.NewRequest(method, target, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Result()
}

func checkSecurityHeaders(t *testing.T, what string, h http.Header) {
	t.Helper()
	want := map[string]string{
		"Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; media-src 'self' blob:; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
		"X-Frame-Options":         "DENY",
		"Referrer-Policy":         "no-referrer",
		"X-Content-Type-Options":  "nosniff",
	}
	for k, v := range want {
		if got := h.Get(k); got != v {
			t.Errorf("%s: %s = %q, want %q", what, k, got, v)
		}
	}
}

func TestAssetsHeadersAndTypes(t *testing.T) {
	h := Handler()
	wantType := map[string]string{
		"/":               "text/html; charset=utf-8",
		"/index.html":     "text/html; charset=utf-8",
		"/app.js":         "text/javascript; charset=utf-8",
		"/whep.js":        "text/javascript; charset=utf-8",
		"/live.js":        "text/javascript; charset=utf-8",
		"/egress.js":      "text/javascript; charset=utf-8",
		"/timeline.js":    "text/javascript; charset=utf-8",
		"/evidence.js":    "text/javascript; charset=utf-8",
		"/recutil.js":     "text/javascript; charset=utf-8",
		"/playback-sw.js": "text/javascript; charset=utf-8",
		"/style.css":      "text/css; charset=utf-8",
		"/timeline.css":   "text/css; charset=utf-8",
		"/favicon.svg":    "image/svg+xml",
		"/favicon.ico":    "image/svg+xml",
		"/single.js":      "text/javascript; charset=utf-8",
		"/ptz.js":         "text/javascript; charset=utf-8",
		"/single.css":     "text/css; charset=utf-8",
		"/hardening.js":   "text/javascript; charset=utf-8",
		"/oidc.js":        "text/javascript; charset=utf-8",
		"/signin.css":     "text/css; charset=utf-8",
	}
	paths := Paths()
	sort.Strings(paths)
	if len(paths) != len(wantType) {
		t.Errorf("Paths() = %v, want the %d paths of this test", paths, len(wantType))
	}
	for _, p := range paths {
		ct, ok := wantType[p]
		if !ok {
			t.Errorf("Paths() has %q, which this test does not check", p)
			continue
		}
		for _, m := range []string{http.MethodGet, http.MethodHead} {
			res := serve(t, h, m, p, nil)
			body, _ := io.ReadAll(res.Body)
			if res.StatusCode != http.StatusOK {
				t.Errorf("%s %s = %d", m, p, res.StatusCode)
			}
			checkSecurityHeaders(t, m+" "+p, res.Header)
			if got := res.Header.Get("Content-Type"); got != ct {
				t.Errorf("%s %s Content-Type = %q, want %q", m, p, got, ct)
			}
			if m == http.MethodGet && len(body) == 0 {
				t.Errorf("GET %s: empty body", p)
			}
			if m == http.MethodHead && len(body) != 0 {
				t.Errorf("HEAD %s: body of %d bytes", p, len(body))
			}
			cc := res.Header.Get("Cache-Control")
			if p == "/" || p == "/index.html" {
				if cc != "no-store" {
					t.Errorf("%s %s Cache-Control = %q, want no-store", m, p, cc)
				}
			} else if cc == "" || strings.Contains(cc, "public") || strings.Contains(cc, "immutable") {
				t.Errorf("%s %s Cache-Control = %q", m, p, cc)
			}
		}
	}
}

func TestConditionalGet(t *testing.T) {
	h := Handler()
	res := serve(t, h, http.MethodGet, "/app.js", nil)
	etag := res.Header.Get("ETag")
	if etag == "" {
		t.Fatal("no ETag on /app.js")
	}
	res = serve(t, h, http.MethodGet, "/app.js", map[string]string{"If-None-Match": etag})
	if res.StatusCode != http.StatusNotModified {
		t.Errorf("If-None-Match: status %d, want 304", res.StatusCode)
	}
	checkSecurityHeaders(t, "304 /app.js", res.Header)
}

func TestNotFoundAndMethods(t *testing.T) {
	h := Handler()
	for _, p := range []string{"/nope", "/assets/app.js", "/app.js/", "//app.js", "/../web.go", "/index.htm",
		"/api/v1/cameras", "/whep/cam", "/healthz", "/web.go", "/assets/", "/.git/config"} {
		res := serve(t, h, http.MethodGet, p, nil)
		if res.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s = %d, want 404", p, res.StatusCode)
		}
		checkSecurityHeaders(t, "404 "+p, res.Header)
		if ct := res.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("GET %s: Content-Type %q, want application/json", p, ct)
		}
		body, _ := io.ReadAll(res.Body)
		if !bytes.Contains(body, []byte(`"error"`)) {
			t.Errorf("GET %s: body %q is not a JSON error", p, body)
		}
	}
	for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodPatch, http.MethodOptions, "TRACE"} {
		for _, p := range []string{"/", "/app.js", "/style.css"} {
			res := serve(t, h, m, p, nil)
			if res.StatusCode != http.StatusMethodNotAllowed {
				t.Errorf("%s %s = %d, want 405", m, p, res.StatusCode)
			}
			if a := res.Header.Get("Allow"); a != "GET, HEAD" {
				t.Errorf("%s %s Allow = %q", m, p, a)
			}
			checkSecurityHeaders(t, "405 "+m+" "+p, res.Header)
		}
	}
}

func TestSecurityHeadersWrapsAnyHandler(t *testing.T) {
	h := SecurityHeaders(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusTeapot)
	}))
	res := serve(t, h, http.MethodGet, "/api/v1/cameras", nil)
	if res.StatusCode != http.StatusTeapot {
		t.Fatalf("status %d", res.StatusCode)
	}
	checkSecurityHeaders(t, "wrapped", res.Header)
}

func readAsset(t *testing.T, name string) string {
	t.Helper()
	b, err := fs.ReadFile(assetFS, "assets/"+name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func assetNames(t *testing.T) []string {
	t.Helper()
	entries, err := fs.ReadDir(assetFS, "assets")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if len(names) < 5 {
		t.Fatalf("only %d embedded assets: %v", len(names), names)
	}
	return names
}

// Every embedded asset must be reachable (nothing dead ships).
func TestEveryAssetRouted(t *testing.T) {
	routed := map[string]bool{}
	for _, name := range routes {
		routed[name] = true
	}
	for _, n := range assetNames(t) {
		if !routed[n] {
			t.Errorf("asset %s is embedded but not served", n)
		}
	}
}

// checkHTMLInline walks an HTML document and reports inline script, inline
// style, event-handler attributes and javascript: URLs.
func checkHTMLInline(doc string) []string {
	var problems []string
	z := html.NewTokenizer(strings.NewReader(doc))
	inScript := false
	for {
		tt := z.Next()
		switch tt {
		case html.ErrorToken:
			if z.Err() == io.EOF {
				return problems
			}
			return append(problems, "parse error: "+z.Err().Error())
		case html.StartTagToken, html.SelfClosingTagToken:
			tok := z.Token()
			hasSrc := false
			for _, a := range tok.Attr {
				k := strings.ToLower(a.Key)
				switch {
				case k == "style":
					problems = append(problems, "style= attribute on <"+tok.Data+">")
				case strings.HasPrefix(k, "on"):
					problems = append(problems, k+"= attribute on <"+tok.Data+">")
				case k == "src" && a.Val != "":
					hasSrc = true
				}
				if strings.HasPrefix(strings.ToLower(strings.TrimSpace(a.Val)), "javascript:") {
					problems = append(problems, "javascript: URL in "+k+" on <"+tok.Data+">")
				}
			}
			switch tok.Data {
			case "style":
				problems = append(problems, "<style> element")
			case "script":
				if !hasSrc {
					problems = append(problems, "<script> without src")
				}
				inScript = tt == html.StartTagToken
			}
		case html.TextToken:
			if inScript && strings.TrimSpace(string(z.Text())) != "" {
				problems = append(problems, "<script> with a body")
			}
		case html.EndTagToken:
			if tn, _ := z.TagName(); string(tn) == "script" {
				inScript = false
			}
		}
	}
}

func TestCheckHTMLInlineCatchesViolations(t *testing.T) {
	// The checker itself must be able to fail.
	bad := []string{
		`<p style="color:red">x</p>`,
		`<script>alert(1)</script>`,
		`<script src="/a.js">alert(1)</script>`,
		`<button onclick="x()">b</button>`,
		`<style>p{}</style>`,
		`<a href="javascript:alert(1)">a</a>`,
		`<img src=x ONERROR=y>`,
	}
	for _, doc := range bad {
		if len(checkHTMLInline(doc)) == 0 {
			t.Errorf("checker missed a violation in %s", doc)
		}
	}
	if p := checkHTMLInline(`<script type="module" src="/app.js"></script><p class="x">ok</p>`); len(p) != 0 {
		t.Errorf("checker flagged a clean document: %v", p)
	}
}

func TestIndexHasNoInlineScriptOrStyle(t *testing.T) {
	res := serve(t, Handler(), http.MethodGet, "/", nil)
	body, _ := io.ReadAll(res.Body)
	if p := checkHTMLInline(string(body)); len(p) != 0 {
		t.Errorf("index.html: %v", p)
	}
	doc := string(body)
	for _, want := range []string{`src="/app.js"`, `href="/style.css"`, `class="cordon-video"`, `id="signin-form"`, `id="grid"`} {
		if !strings.Contains(doc, want) {
			t.Errorf("index.html lacks %s", want)
		}
	}
}

// XML namespace names are identifiers, never fetched.
var namespaceURLs = []string{"http://www.w3.org/2000/svg", "http://www.w3.org/1999/xlink"}

var externalURL = regexp.MustCompile(`(?i)(https?:|wss?:|ftp:)//|["'(=` + "`" + `]\s*//[^/\s]|url\(\s*["']?\s*(https?:|//)|@import`)

func findExternal(body string) []string {
	for _, ns := range namespaceURLs {
		body = strings.ReplaceAll(body, ns, "")
	}
	return externalURL.FindAllString(body, -1)
}

func TestFindExternalCatchesURLs(t *testing.T) {
	for _, s := range []string{
		`<script src="https://cdn.example/x.js">`,
		`fetch("http://10.0.0.1/x")`,
		`<img src="//evil.example/x.png">`,
		`background: url(//cdn/x.png)`,
		`@import "x.css";`,
		"const u = `//host/x`",
		`new WebSocket('wss://x')`,
	} {
		if len(findExternal(s)) == 0 {
			t.Errorf("findExternal missed %s", s)
		}
	}
	if got := findExternal("// a comment\nconst a = 1; // another\n<svg xmlns=\"http://www.w3.org/2000/svg\">"); len(got) != 0 {
		t.Errorf("findExternal flagged comments or a namespace: %v", got)
	}
}

func TestNoExternalURLs(t *testing.T) {
	for _, name := range assetNames(t) {
		if hits := findExternal(readAsset(t, name)); len(hits) != 0 {
			t.Errorf("%s references something outside the gateway: %q", name, hits)
		}
	}
}

// The scripts must not build HTML from data, evaluate strings, or persist the
// token anywhere but memory.
func TestScriptsAvoidDangerousSinks(t *testing.T) {
	forbidden := []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(",
		"new Function", "localStorage", "document.cookie", "setAttribute('style", `setAttribute("style`,
		"access_token", "?token", "&token"}
	n := 0
	for _, name := range assetNames(t) {
		if path.Ext(name) != ".js" {
			continue
		}
		n++
		src := readAsset(t, name)
		for _, f := range forbidden {
			if strings.Contains(src, f) {
				t.Errorf("%s uses %s", name, f)
			}
		}
	}
	if n < 2 {
		t.Errorf("found %d scripts", n)
	}
}

// The module graph must stay within the served paths.
func TestImportsAreServed(t *testing.T) {
	imp := regexp.MustCompile(`(?m)^\s*import\s[^'"]*['"]([^'"]+)['"]`)
	for _, name := range assetNames(t) {
		if path.Ext(name) != ".js" {
			continue
		}
		for _, m := range imp.FindAllStringSubmatch(readAsset(t, name), -1) {
			p := path.Clean("/" + strings.TrimPrefix(m[1], "./"))
			if _, ok := routes[p]; !ok {
				t.Errorf("%s imports %s, which is not served", name, m[1])
			}
		}
	}
}
