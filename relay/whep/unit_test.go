package whep

import (
	"errors"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"cordon/relay"
)

// A viewer on ICE-TCP that stops reading must not hang its session's
// goroutine: the write times out and the connection is closed.
func TestTCPWriteDeadline(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dl := deadlineListener{Listener: ln, timeout: 200 * time.Millisecond}
	defer dl.Close()
	peer, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close() // never read from
	c, err := dl.Accept()
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		buf := make([]byte, 64<<10)
		for {
			if _, err := c.Write(buf); err != nil {
				done <- err
				return
			}
		}
	}()
	select {
	case err := <-done:
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("write error %v, want a deadline", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("write to a stalled ICE-TCP peer blocked")
	}
	if _, err := c.Write([]byte{1}); err == nil {
		t.Fatal("connection still open after a timed-out write")
	}
}

func TestChooseCodecs(t *testing.T) {
	mk := func(video, audio string) *offer {
		o, err := parseOffer([]byte("v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n" + video + audio))
		if err != nil {
			t.Fatal(err)
		}
		return o
	}
	chrome := "m=video 9 UDP/TLS/RTP/SAVPF 96 102 103 49\r\na=rtpmap:96 VP8/90000\r\na=rtpmap:102 H264/90000\r\n" +
		"a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f\r\n" +
		"a=rtpmap:103 H264/90000\r\na=fmtp:103 level-asymmetry-allowed=1;packetization-mode=0;profile-level-id=42001f\r\n" +
		"a=rtpmap:49 H265/90000\r\na=fmtp:49 level-id=93;profile-id=1;tier-flag=0;tx-mode=SRST\r\n"
	noH265 := "m=video 9 UDP/TLS/RTP/SAVPF 96 102\r\na=rtpmap:96 VP8/90000\r\na=rtpmap:102 H264/90000\r\n" +
		"a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f\r\n"
	audio := "m=audio 9 UDP/TLS/RTP/SAVPF 111 0 8\r\na=rtpmap:111 opus/48000/2\r\na=fmtp:111 minptime=10;useinbandfec=1\r\n"
	h264 := relay.OutTrack{Track: relay.Track{Kind: relay.KindVideo, Codec: relay.CodecH264, ClockRate: 90000}, Index: 0, ProfileLevelID: "4d0029"}
	h265 := relay.OutTrack{Track: relay.Track{Kind: relay.KindVideo, Codec: relay.CodecH265, ClockRate: 90000}, Index: 0}
	aud := func(c relay.Codec, rate int) relay.OutTrack {
		return relay.OutTrack{Track: relay.Track{Kind: relay.KindAudio, Codec: c, ClockRate: rate}, Index: 1}
	}
	for _, tc := range []struct {
		name   string
		o      *offer
		tracks []relay.OutTrack
		want   []string // mime/pt
		err    string
	}{
		{"h264+pcmu", mk(chrome, audio), []relay.OutTrack{h264, aud(relay.CodecPCMU, 8000)}, []string{"video/H264/102", "audio/PCMU/0"}, ""},
		{"h264+pcma", mk(chrome, audio), []relay.OutTrack{h264, aud(relay.CodecPCMA, 8000)}, []string{"video/H264/102", "audio/PCMA/8"}, ""},
		{"h264+opus", mk(chrome, audio), []relay.OutTrack{h264, aud(relay.CodecOpus, 48000)}, []string{"video/H264/102", "audio/opus/111"}, ""},
		{"h264+aac", mk(chrome, audio), []relay.OutTrack{h264, aud(relay.CodecAAC, 48000)}, []string{"video/H264/102"}, ""},
		{"h264, no audio m-line", mk(chrome, ""), []relay.OutTrack{h264, aud(relay.CodecPCMU, 8000)}, []string{"video/H264/102"}, ""},
		{"h265 offered", mk(chrome, audio), []relay.OutTrack{h265}, []string{"video/H265/49"}, ""},
		{"h265 not offered", mk(noH265, audio), []relay.OutTrack{h265, aud(relay.CodecPCMU, 8000)}, nil, "H.265"},
		{"vp8 only", mk("m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=rtpmap:96 VP8/90000\r\n", ""), []relay.OutTrack{h264}, nil, "H.264"},
	} {
		picks, err := chooseCodecs(tc.o, tc.tracks)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: err %v, want one about %s", tc.name, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		var got []string
		for _, p := range picks {
			got = append(got, p.codec.MimeType+"/"+itoa(int(p.codec.PayloadType)))
		}
		if strings.Join(got, " ") != strings.Join(tc.want, " ") {
			t.Errorf("%s: picked %v, want %v", tc.name, got, tc.want)
		}
	}
	if _, err := parseOffer([]byte("v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n" + audio)); err == nil {
		t.Error("offer without video accepted")
	}
}

func itoa(i int) string { return strconv.Itoa(i) }
