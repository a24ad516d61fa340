package gateway

import (
	"net/http"
	"net/http/pprof"
)

// mountPProf serves Go's profiler under /debug/pprof/ on mux (the metrics
// listener's, never http.DefaultServeMux): Index also serves the named
// profiles (heap, goroutine, allocs, block, mutex, threadcreate).
func mountPProf(mux *http.ServeMux) {
	mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("POST /debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
}
