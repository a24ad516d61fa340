package democam

import (
	"bufio"
	"encoding/binary"
	"io"
	"net/textproto"
	"strconv"
)

// maxRequestBody bounds the body of a client's request a camera reads.
const maxRequestBody = 1 << 16

// ReadRTSPRequest reads the next request a client sends on an RTSP (TCP)
// connection: its request line, headers and body (at most 64 KiB are
// read), skipping the interleaved frames ('$', channel, length: RTCP
// receiver reports) the client sends between requests. The hand-made
// cameras of democam and of other packages' tests read with it.
func ReadRTSPRequest(br *bufio.Reader) (line string, hdr textproto.MIMEHeader, body []byte, err error) {
	for {
		b, err := br.Peek(1)
		if err != nil {
			return "", nil, nil, err
		}
		if b[0] != '$' {
			break
		}
		var frame [4]byte
		if _, err := io.ReadFull(br, frame[:]); err != nil {
			return "", nil, nil, err
		}
		if _, err := br.Discard(int(binary.BigEndian.Uint16(frame[2:]))); err != nil {
			return "", nil, nil, err
		}
	}
	tp := textproto.NewReader(br)
	if line, err = tp.ReadLine(); err != nil {
		return "", nil, nil, err
	}
	if hdr, err = tp.ReadMIMEHeader(); err != nil {
		return "", nil, nil, err
	}
	if n, _ := strconv.Atoi(hdr.Get("Content-Length")); n > 0 {
		body = make([]byte, min(n, maxRequestBody))
		if _, err := io.ReadFull(br, body); err != nil {
			return "", nil, nil, err
		}
	}
	return line, hdr, body, nil
}
