package httpx

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestWriteErrorAndRemoteHost(t *testing.T) {
	w := httptest.NewRecorder()
	WriteError(w, http.StatusForbidden, "you may not view this camera")
	if w.Code != 403 || w.Header().Get("Content-Type") != "application/json" || w.Header().Get("Cache-Control") != "no-store" ||
		w.Body.String() != "{\"error\":\"you may not view this camera\"}\n" {
		t.Fatalf("%d %v %q", w.Code, w.Header(), w.Body.String())
	}
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.RemoteAddr = "[::1]:4242"
	if RemoteHost(r) != "::1" {
		t.Fatal(RemoteHost(r))
	}
	r.RemoteAddr = "pipe"
	if RemoteHost(r) != "pipe" {
		t.Fatal(RemoteHost(r))
	}
}
