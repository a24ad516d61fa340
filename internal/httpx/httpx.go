// Package httpx holds the few HTTP helpers every cordon door shares: the
// contract's JSON error shape and the peer address of a request. It lives
// in internal/ because it serves several packages and belongs to none.
package httpx

import (
	"encoding/json"
	"net"
	"net/http"
)

// WriteJSON answers v as JSON with status; never cached.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// WriteError answers the contract's error shape: {"error": "<sentence>"}.
func WriteError(w http.ResponseWriter, status int, msg string) {
	WriteJSON(w, status, map[string]string{"error": msg})
}

// RemoteHost is the host part of the request's peer address (no proxy
// headers: auth.Service.RemoteAddr knows which proxies to believe).
func RemoteHost(r *http.Request) string {
	h, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return h
}
