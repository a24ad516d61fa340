package democam

import (
	"bufio"
	"bytes"
	"strings"
	"testing"
)

// Interleaved frames between requests are skipped, headers and a body are
// read, a body past 64 KiB is cut, a truncated frame or request is an
// error.
func TestReadRTSPRequest(t *testing.T) {
	in := "$\x01\x00\x03abc" + "OPTIONS rtsp://h/p RTSP/1.0\r\nCSeq: 1\r\n\r\n" +
		"$\x00\x00\x00" + "SET_PARAMETER rtsp://h/p RTSP/1.0\r\nCSeq: 2\r\nContent-Length: 5\r\n\r\nhello" +
		"ANNOUNCE rtsp://h/p RTSP/1.0\r\nCSeq: 3\r\nContent-Length: 70000\r\n\r\n" + strings.Repeat("x", 70000)
	br := bufio.NewReader(strings.NewReader(in))
	line, hdr, body, err := ReadRTSPRequest(br)
	if err != nil || line != "OPTIONS rtsp://h/p RTSP/1.0" || hdr.Get("CSeq") != "1" || body != nil {
		t.Fatalf("first: %q %v %q %v", line, hdr, body, err)
	}
	line, hdr, body, err = ReadRTSPRequest(br)
	if err != nil || !strings.HasPrefix(line, "SET_PARAMETER ") || hdr.Get("CSeq") != "2" || string(body) != "hello" {
		t.Fatalf("second: %q %v %q %v", line, hdr, body, err)
	}
	line, _, body, err = ReadRTSPRequest(br)
	if err != nil || !strings.HasPrefix(line, "ANNOUNCE ") || len(body) != maxRequestBody {
		t.Fatalf("third: %q %d bytes %v", line, len(body), err)
	}
	for _, bad := range []string{"", "$\x00\x00\x09abc", "$\x00", "OPTIONS rtsp://h/p RTSP/1.0\r\nCSeq: 1\r\n",
		"DESCRIBE rtsp://h/p RTSP/1.0\r\nContent-Length: 9\r\n\r\nabc"} {
		if _, _, _, err := ReadRTSPRequest(bufio.NewReader(strings.NewReader(bad))); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

// Any input ends in a request or an error, and never reads a body larger
// than the bound.
func FuzzReadRTSPRequest(f *testing.F) {
	f.Add([]byte("$\x01\x00\x03abcOPTIONS rtsp://h/p RTSP/1.0\r\nCSeq: 1\r\n\r\n"))
	f.Add([]byte("SETUP rtsp://h/p RTSP/1.0\r\nCSeq: 2\r\nContent-Length: 3\r\n\r\nabc"))
	f.Add([]byte("$\x00\xff\xff"))
	f.Fuzz(func(t *testing.T, b []byte) {
		br := bufio.NewReader(bytes.NewReader(b))
		for range 8 {
			_, _, body, err := ReadRTSPRequest(br)
			if err != nil {
				return
			}
			if len(body) > maxRequestBody {
				t.Fatalf("a body of %d bytes", len(body))
			}
		}
	})
}
