package api

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"

	"cordon/record"
)

// Errors of package record map to the statuses its doc names, with a
// sentence a client can act on, never an internal detail.
func TestRecordingErrorStatuses(t *testing.T) {
	s := &Recordings{Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	for _, c := range []struct {
		err    error
		status int
		msg    string
	}{
		{record.ErrUnknownCamera, 404, "nothing was ever recorded"},
		{record.ErrNoRecording, 404, "nothing was recorded in that span"},
		{fmt.Errorf("%w: an export covers at most 24h0m0s", record.ErrBadSpan), 400, "at most 24h"},
		{&record.CorruptError{File: "gate/2026-11-30/x.mp4", Reason: "truncated"}, 409, "gate/2026-11-30/x.mp4 is damaged"},
		{fmt.Errorf("export refused: %w: disk gone", record.ErrAuditUnavailable), 503, "audit log cannot be written"},
		{fmt.Errorf("write: %w", syscall.ENOSPC), 507, "disk is full"},
		{errors.New("open /secret/path: permission denied"), 500, "internal error"},
	} {
		w := httptest.NewRecorder()
		s.writeError(w, httptest.NewRequest(http.MethodGet, "/api/v1/exports", nil), c.err)
		if w.Code != c.status || !strings.Contains(w.Body.String(), c.msg) || strings.Contains(w.Body.String(), "/secret") {
			t.Errorf("%v: %d %s, want %d %q", c.err, w.Code, w.Body.String(), c.status, c.msg)
		}
		if c.status == 503 && w.Header().Get("Retry-After") == "" {
			t.Errorf("503 without Retry-After")
		}
	}
}
