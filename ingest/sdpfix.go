package ingest

import (
	"bytes"
	"strconv"

	"github.com/bluenviron/gortsplib/v5/pkg/base"
)

// parseableMediaTypes are the m= types gortsplib's SDP parser accepts. It
// rejects the whole description for any other (e.g. a camera's private
// "m=vana ... video.analysis" track), so such sections are cut out of the
// DESCRIBE answer before gortsplib parses it; they would be dropped anyway.
var parseableMediaTypes = [][]byte{[]byte("video"), []byte("audio"), []byte("application"), []byte("text"), []byte("message")}

// stripUnknownMedia removes media sections with a type gortsplib cannot
// parse and returns the new SDP and how many were removed.
func stripUnknownMedia(sdp []byte) ([]byte, int) {
	if !bytes.Contains(sdp, []byte("m=")) {
		return sdp, 0
	}
	out := make([]byte, 0, len(sdp))
	removed := 0
	skipping := false
	for rest := sdp; len(rest) > 0; {
		line := rest
		if i := bytes.IndexByte(rest, '\n'); i >= 0 {
			line, rest = rest[:i+1], rest[i+1:]
		} else {
			rest = nil
		}
		if bytes.HasPrefix(line, []byte("m=")) {
			typ := line[2:]
			if i := bytes.IndexAny(typ, " \r\n"); i >= 0 {
				typ = typ[:i]
			}
			skipping = true
			for _, t := range parseableMediaTypes {
				if bytes.Equal(typ, t) {
					skipping = false
				}
			}
			if skipping {
				removed++
			}
		}
		if !skipping {
			out = append(out, line...)
		}
	}
	return out, removed
}

// fixDescribeResponse is the client's OnResponse hook: it runs before
// gortsplib parses the answer. It returns how many sections it removed.
func fixDescribeResponse(res *base.Response) int {
	ct, ok := res.Header["Content-Type"]
	if !ok || len(ct) != 1 || !bytes.HasPrefix([]byte(ct[0]), []byte("application/sdp")) || len(res.Body) == 0 {
		return 0
	}
	var n int
	res.Body, n = stripUnknownMedia(res.Body)
	if n > 0 {
		res.Header["Content-Length"] = base.HeaderValue{strconv.Itoa(len(res.Body))}
	}
	return n
}
