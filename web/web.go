// Package web serves cordon's viewer page: a sign-in form, then a grid of the
// cameras the user may view, each playing over WHEP.
//
// Every asset is embedded (the network is closed: no CDN, no external fonts or
// scripts) and served under a strict Content-Security-Policy with no inline
// script or style. The gateway mounts Handler at "/" and routes "/api/",
// "/whep/" and "/healthz" elsewhere; everything else reaching Handler that is
// not one of the embedded assets is a 404.
//
// Test hooks for end-to-end tests (see README.md in this directory):
//
//   - each camera tile is `article.tile[data-camera="<id>"]` with
//     `data-state` one of connecting, playing, reconnecting, offline,
//     forbidden, signed-out, unsupported, error;
//   - its video element is `video.cordon-video`;
//   - `await window.cordonStats("<id>")` returns
//     {framesDecoded, width, height, state}.
package web

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"net/http"
	"path"
	"time"

	"cordon/internal/httpx"
)

// ContentSecurityPolicy is the policy sent with every response of Handler and
// SecurityHeaders. It allows no inline script or style and no external origin.
const ContentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; " +
	"img-src 'self' data:; media-src 'self' blob:; connect-src 'self'; " +
	"base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

//go:embed assets
var assetFS embed.FS

// asset is one embedded file, ready to serve.
type asset struct {
	name        string
	body        []byte
	contentType string
	etag        string
	cache       string
}

// routes maps request paths to the embedded asset served for them.
var routes = map[string]string{
	"/":               "index.html",
	"/index.html":     "index.html",
	"/app.js":         "app.js",
	"/whep.js":        "whep.js",
	"/live.js":        "live.js",
	"/egress.js":      "egress.js",
	"/single.js":      "single.js",
	"/ptz.js":         "ptz.js",
	"/hardening.js":   "hardening.js",
	"/single.css":     "single.css",
	"/timeline.js":    "timeline.js",
	"/evidence.js":    "evidence.js",
	"/recutil.js":     "recutil.js",
	"/timeline.css":   "timeline.css",
	"/playback-sw.js": "playback-sw.js",
	"/style.css":      "style.css",
	"/favicon.svg":    "favicon.svg",
	"/favicon.ico":    "favicon.svg", // browsers ask for it regardless of <link rel=icon>
	"/oidc.js":        "oidc.js",
	"/signin.css":     "signin.css",
}

var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".svg":  "image/svg+xml",
}

// Paths lists the request paths Handler answers with 200 (for tests and for
// the gateway's route table).
func Paths() []string {
	out := make([]string, 0, len(routes))
	for p := range routes {
		out = append(out, p)
	}
	return out
}

// Handler returns the viewer: the embedded page and its assets, with security
// headers on every response. Only GET and HEAD are allowed (405 otherwise);
// paths that are not assets are 404.
func Handler() http.Handler {
	assets := map[string]*asset{}
	for p, name := range routes {
		a, err := load(name)
		if err != nil {
			// The assets are embedded at build time: a missing one is a
			// programming error caught by the package's tests.
			panic("web: embedded asset " + name + ": " + err.Error())
		}
		assets[p] = a
	}
	return SecurityHeaders(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a, ok := assets[r.URL.Path]
		if !ok {
			httpx.WriteError(w, http.StatusNotFound, "not found")
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			httpx.WriteError(w, http.StatusMethodNotAllowed, "method not allowed")
			return
		}
		h := w.Header()
		h.Set("Content-Type", a.contentType)
		h.Set("Cache-Control", a.cache)
		h.Set("ETag", a.etag)
		http.ServeContent(w, r, a.name, time.Time{}, bytes.NewReader(a.body))
	}))
}

func load(name string) (*asset, error) {
	body, err := fs.ReadFile(assetFS, "assets/"+name)
	if err != nil {
		return nil, err
	}
	ct, ok := contentTypes[path.Ext(name)]
	if !ok {
		ct = "application/octet-stream"
	}
	sum := sha256.Sum256(body)
	cache := "no-cache" // revalidate with the ETag: names carry no version
	if name == "index.html" {
		cache = "no-store"
	}
	return &asset{
		name:        name,
		body:        body,
		contentType: ct,
		etag:        `"` + hex.EncodeToString(sum[:12]) + `"`,
		cache:       cache,
	}, nil
}

// SecurityHeaders sets the viewer's security headers (CSP, framing, referrer,
// MIME sniffing) on every response of h. The gateway may wrap its other
// routes with it too; the headers are harmless on JSON and SDP answers.
func SecurityHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", ContentSecurityPolicy)
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("Referrer-Policy", "no-referrer")
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Cross-Origin-Opener-Policy", "same-origin")
		hd.Set("Cross-Origin-Resource-Policy", "same-origin")
		hd.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=(), usb=()")
		h.ServeHTTP(w, r)
	})
}
