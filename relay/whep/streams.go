package whep

import (
	"errors"
	"net/http"
	"net/url"

	"cordon/relay"
)

// Which of a camera's streams a POST asks for, and the refusal of a
// stream with B-frames.

// ErrBadStream is the answer to a ?stream= other than main or sub.
var ErrBadStream = errors.New("stream must be main or sub")

// StreamName returns the stream a WHEP POST asks for with ?stream=: ""
// for the main stream (absent, empty or "main"), "sub" for the sub
// stream; ErrBadStream otherwise. The owner's Access uses it too, so that
// it authorizes the stream the door will serve.
func StreamName(r *http.Request) (string, error) {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil || len(q["stream"]) > 1 {
		return "", ErrBadStream
	}
	switch q.Get("stream") {
	case "", "main":
		return "", nil
	case "sub":
		return "sub", nil
	}
	return "", ErrBadStream
}

// failBFrames answers 422: the stream has B-frames, which WebRTC players
// cannot show. The sentence names the fix, and the sub stream when the
// camera has one.
func (s *Server) failBFrames(w http.ResponseWriter, camera, name string) {
	msg := relay.ErrBFrames.Error()
	if name == "" && s.Hub.Lookup(camera, "sub") != nil {
		msg += "; this camera has a sub stream: POST /whep/" + camera + "?stream=sub"
	}
	s.fail(w, http.StatusUnprocessableEntity, "b_frames", msg)
}
