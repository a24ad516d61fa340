package soap

import (
	"errors"
	"mime"
	"net/http"
	"strconv"
)

// Server-side helpers: the ONVIF device face and democam's ONVIF camera
// read requests and write answers with these.

// RequestVersion guesses the SOAP version of an HTTP request from its
// Content-Type (text/xml = SOAP 1.1), for answering before the body is
// parsed.
func RequestVersion(r *http.Request) Version {
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt == "text/xml" {
		return SOAP11
	}
	return SOAP12
}

// ReadRequest reads and parses the SOAP request of an HTTP POST within the
// limits. On failure it returns the fault to answer with (Sender
// WellFormed for bad XML, Receiver for a body over the size limit).
func ReadRequest(w http.ResponseWriter, r *http.Request, lim Limits) (*Envelope, *Fault) {
	lim = lim.withDefaults()
	if r.Method != http.MethodPost {
		return nil, NewFault(CodeSender, "SOAP requests are POSTs")
	}
	if r.ContentLength > lim.MaxBytes {
		return nil, NewFault(CodeSender, "message too large")
	}
	body := http.MaxBytesReader(w, r.Body, lim.MaxBytes)
	env, err := ParseEnvelope(body, lim)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.Is(err, ErrTooLarge) || errors.As(err, &mbe) {
			return nil, NewFault(CodeSender, "message too large")
		}
		return nil, WellFormed(clip(err.Error(), 160))
	}
	return env, nil
}

// WriteResponse answers 200 with a message of version v holding body.
func WriteResponse(w http.ResponseWriter, v Version, body ...Node) {
	write(w, http.StatusOK, &Message{Version: v, Body: body})
}

// WriteFault answers with the fault and its HTTP status.
func WriteFault(w http.ResponseWriter, v Version, f *Fault) {
	write(w, f.HTTPStatus(), &Message{Version: v, Body: []Node{f.Node(v)}})
}

func write(w http.ResponseWriter, status int, m *Message) {
	b := m.Bytes()
	w.Header().Set("Content-Type", m.Version.ContentType())
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
