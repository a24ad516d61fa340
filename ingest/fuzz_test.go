package ingest

import (
	"bytes"
	"encoding/binary"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v5/pkg/description"
	"github.com/bluenviron/gortsplib/v5/pkg/format"
	"github.com/bluenviron/gortsplib/v5/pkg/sdpunmarshaler"
	"github.com/pion/rtp"

	"cordon/relay"
)

const hikvisionSDP = "v=0\r\no=- 1109162014219182 0 IN IP4 0.0.0.0\r\ns=HIK Media Server V3.0.2\r\ni=HIK Media Server Session Description : standard\r\n" +
	"e=NONE\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\na=control:*\r\nb=AS:4096\r\na=range:npt=now-\r\n" +
	"m=video 0 RTP/AVP 96\r\ni=Video Media\r\na=rtpmap:96 H264/90000\r\n" +
	"a=fmtp:96 profile-level-id=4D0014;packetization-mode=0;sprop-parameter-sets=Z0IAKeKQFAe2AtwEBAaQeJEV,aM48gA==\r\n" +
	"a=control:trackID=video\r\na=Media_header:MEDIAINFO=494D4B48010100000400000100000000000000000000000000000000000000000000000000000000;\r\n" +
	"a=appversion:1.0\r\n" +
	"m=vana 0 RTP/AVP 98\r\na=rtpmap:98 video.analysis/90000\r\n" +
	"m=application 0 RTP/AVP 107\r\na=rtpmap:107 vnd.onvif.metadata/90000\r\na=sendonly\r\n" +
	"m=audio 0 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendonly\r\na=control:trackID=audio-back\r\n"

// FuzzSDPIntake feeds a camera's DESCRIBE body through everything cordon
// does with it before SETUP: the unknown-media fix-up, gortsplib's parser
// and track selection. Nothing may panic; only allowed codecs may be kept.
func FuzzSDPIntake(f *testing.F) {
	f.Add([]byte(hikvisionSDP))
	f.Add([]byte("v=0\r\nm=video 0 RTP/AVP 96\r\na=rtpmap:96 H265/90000\r\na=fmtp:96 sprop-vps=QAEMAf//;sprop-sps=QgEB;sprop-pps=RAHA\r\n"))
	f.Add([]byte("v=0\r\nm=audio 0 RTP/AVP 97\r\na=rtpmap:97 MPEG4-GENERIC/16000/1\r\na=fmtp:97 config=1408;sizelength=13;indexlength=3\r\n"))
	f.Add([]byte("m=\r\nm=vana\nm=video"))
	f.Fuzz(func(t *testing.T, body []byte) {
		fixed, _ := stripUnknownMedia(body)
		if len(fixed) > len(body) {
			t.Fatalf("fix-up grew the SDP: %d > %d", len(fixed), len(body))
		}
		sd, err := sdpunmarshaler.Unmarshal(fixed)
		if err != nil {
			return
		}
		var desc description.Session
		if err := desc.Unmarshal2(sd); err != nil {
			return
		}
		sel := selectTracks(&desc)
		for _, k := range sel.kept {
			switch k.track.Codec {
			case relay.CodecH264, relay.CodecH265, relay.CodecPCMU, relay.CodecPCMA, relay.CodecOpus, relay.CodecAAC:
			default:
				t.Fatalf("kept a track with codec %q", k.track.Codec)
			}
			if k.media.IsBackChannel {
				t.Fatal("kept a back-channel")
			}
			if _, err := newDecoder(k.forma); err != nil {
				continue
			}
		}
	})
}

// fuzzSink is a relay.Stream: the depacketizer fuzz runs the real
// sanitizer and packetizer behind the decoders.
func newFuzzStream(tb testing.TB, tracks []relay.Track) *relay.Stream {
	st := &relay.Stream{Camera: "fuzz", QueueFrames: 8}
	if err := st.Initialize(); err != nil {
		tb.Fatal(err)
	}
	if err := st.CameraConnected(tracks); err != nil {
		tb.Fatal(err)
	}
	return st
}

// FuzzDepacketize feeds arbitrary RTP packets to every depacketizer ingest
// uses and the units it gets to a real relay.Stream (sanitizer and
// re-packetizer). The first byte picks the format; then each packet is a
// 2-byte length and that many bytes. Nothing may panic.
func FuzzDepacketize(f *testing.F) {
	pkt := func(pt uint8, seq uint16, ts uint32, marker bool, payload []byte) []byte {
		p := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: pt, SequenceNumber: seq, Timestamp: ts, Marker: marker}, Payload: payload}
		b, _ := p.Marshal()
		var l [2]byte
		binary.BigEndian.PutUint16(l[:], uint16(len(b)))
		return append(l[:], b...)
	}
	sps := []byte{0x67, 0x42, 0xc0, 0x1e, 0xd9, 0x01, 0x40, 0x7b, 0x60, 0x22}
	pps := []byte{0x68, 0xcb, 0x83, 0xcb, 0x20}
	var seed bytes.Buffer
	seed.WriteByte(0)
	seed.Write(pkt(96, 1, 0, true, sps))
	seed.Write(pkt(96, 2, 0, true, pps))
	seed.Write(pkt(96, 3, 0, false, []byte{0x7c, 0x85, 1, 2, 3}))                           // FU-A start
	seed.Write(pkt(96, 4, 0, true, []byte{0x7c, 0x45, 4, 5, 6}))                            // FU-A end
	seed.Write(pkt(96, 5, 3000, true, []byte{0x18, 0, 2, 0x09, 0xf0, 0, 3, 0x41, 0x9a, 1})) // STAP-A: AUD + slice
	f.Add(seed.Bytes())
	f.Add(append([]byte{1}, pkt(96, 9, 0, true, []byte{0x40, 0x01, 0x0c, 0x01})...))
	f.Add(append([]byte{3}, pkt(97, 1, 0, true, []byte{0, 16, 0, 0x21, 0x10})...))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) < 1 {
			return
		}
		formats := []format.Format{
			&format.H264{PayloadTyp: 96, PacketizationMode: 1},
			&format.H265{PayloadTyp: 96},
			&format.G711{PayloadTyp: 0, MULaw: true, SampleRate: 8000, ChannelCount: 1},
			&format.Opus{PayloadTyp: 97, ChannelCount: 2},
			&format.H264{PayloadTyp: 96, PacketizationMode: 0},
		}
		forma := formats[int(data[0])%len(formats)]
		tr, ok := buildTrack(forma)
		if !ok {
			return
		}
		dec, err := newDecoder(forma)
		if err != nil {
			t.Fatal(err)
		}
		st := newFuzzStream(t, []relay.Track{tr})
		defer st.Close()
		rest := data[1:]
		for n := 0; len(rest) >= 2 && n < 256; n++ {
			l := int(binary.BigEndian.Uint16(rest))
			rest = rest[2:]
			if l > len(rest) {
				l = len(rest)
			}
			var p rtp.Packet
			if err := p.Unmarshal(rest[:l]); err == nil {
				if au, err := dec(&p); err == nil && len(au) > 0 {
					_ = st.WriteUnit(relay.Unit{Track: 0, PTS: time.Duration(p.Timestamp) * time.Millisecond, AU: au})
				}
			}
			rest = rest[l:]
		}
	})
}
