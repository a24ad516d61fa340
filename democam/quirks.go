package democam

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"reflect"
	"strings"

	"cordon/internal/epb"
)

// Quirks reproduce, one by one, camera behaviours from FIELD-NOTES ("Camera
// behaviour seen in the field"). The zero value is a clean camera. Any
// combination may be set.
type Quirks struct {
	// HikvisionSDP: "s=HIK Media Server V5.5.0", "a=x-dimensions:320,180",
	// "a=Media_header:MEDIAINFO=494D4B48...", "a=appversion:1.0"; RTSP header
	// "Server: Hikvision-Webs"; auth realm "hikvision".
	HikvisionSDP bool
	// DahuaTracks: "s=Media Server", session "a=packetization-supported:DH" and
	// "a=x-rtppayload-supported:IV"; an extra "m=application" track
	// vnd.onvif.metadata/90000 (PT 107) that carries ONVIF MetadataStream XML
	// once a second; an audio back-channel track (PCMU, "a=sendonly", always
	// advertised); "Server: Dahua Rtsp Server"; realm "Login to <UUID>".
	DahuaTracks bool
	// PrivateSEI: before each picture, one SEI NAL with payload types 128 and
	// 240 (vendor data) and user-data-unregistered with a per-camera random
	// UUID (SEIPrivateUUID...).
	PrivateSEI bool
	// SignedSEI: before each picture, a separate SEI NAL holding only
	// user-data-unregistered with the Axis signed-video UUID
	// 5369676e-6564-2056-6964-656f2e2e2e30 (AxisSignedVideoUUID).
	SignedSEI bool
	// AUDAndFiller: an access unit delimiter first in every access unit and a
	// filler-data NAL (H.264 type 12, H.265 type 38) after the slices.
	AUDAndFiller bool
	// HeaderExtensions: every video RTP packet carries two CSRCs and 4 bytes of
	// padding; the first packet of each access unit an ONVIF replay
	// extension (profile 0xABAC, 3 words: NTP time, flags C/E/D/T, CSeq), the
	// others an RFC 8285 one-byte extension (0xBEDE, id 1, 3 bytes).
	HeaderExtensions bool
	// ParamsOnlyInSDP: SPS/PPS (and VPS) removed from the stream; they are
	// only in the SDP (sprop-parameter-sets / sprop-vps,sps,pps).
	ParamsOnlyInSDP bool
	// MarkerOnParamSets: SPS and PPS sent each as a single-NAL packet with the
	// RTP marker bit set, same timestamp as the IDR that follows.
	MarkerOnParamSets bool
	// PacketizationMode0: "packetization-mode=0" in the SDP and single NAL
	// unit packets only, from a second clip whose slices are at most 1000
	// bytes (ClipSliced), so every NAL fits a UDP packet. H.264 only.
	PacketizationMode0 bool
	// TimestampResetOnReconnect: after Start/Restart, RTP timestamps start
	// again at 0 and sequence numbers at 0, as after a camera reboot.
	// Without it both continue across restarts.
	TimestampResetOnReconnect bool
	// BFrames: play ClipBFrames (4 s, B-frames: RTP timestamps are
	// presentation times and go backwards in decode order).
	BFrames bool
	// H265: play ClipH265 (4 s, H.265 main, no B-frames). Combines with the
	// SEI/AUD/extension/param quirks; not with PacketizationMode0 or BFrames.
	H265 bool
	// NoMarker: the RTP marker bit is never set; a receiver can only split
	// access units by timestamp.
	NoMarker bool
}

// axisSignedVideoUUID is the user-data-unregistered UUID of Axis signed video.
var axisSignedVideoUUID = [16]byte{0x53, 0x69, 0x67, 0x6e, 0x65, 0x64, 0x20, 0x56, 0x69, 0x64, 0x65, 0x6f, 0x2e, 0x2e, 0x2e, 0x30}

// AxisSignedVideoUUID returns the Axis signed-video SEI UUID
// ("5369676e-6564-2056-6964-656f2e2e2e30") sent by Quirks.SignedSEI.
func AxisSignedVideoUUID() [16]byte { return axisSignedVideoUUID }

// HikvisionMediaHeader is the value of the a=Media_header attribute sent by
// Quirks.HikvisionSDP ("IMKH" private header, hex).
const HikvisionMediaHeader = "MEDIAINFO=494D4B48010200000400000100000000000000000000000000000000000000000000000000000000;"

func (q Quirks) clipName() ClipName {
	switch {
	case q.H265:
		return ClipH265
	case q.BFrames:
		return ClipBFrames
	case q.PacketizationMode0:
		return ClipSliced
	}
	return ClipMain
}

// String lists the quirks that are set.
func (q Quirks) String() string {
	var names []string
	v := reflect.ValueOf(q)
	for i := range v.NumField() {
		if v.Field(i).Bool() {
			names = append(names, v.Type().Field(i).Name)
		}
	}
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ",")
}

// rewriteSDP applies the SDP quirks to the SDP gortsplib generated.
func (c *Camera) rewriteSDP(sdp []byte) []byte {
	q := c.Quirks
	if !q.HikvisionSDP && !q.DahuaTracks && !q.PacketizationMode0 {
		return sdp
	}
	lines := strings.Split(strings.TrimRight(string(sdp), "\r\n"), "\r\n")
	var out []string
	section := "" // "" = session, else the m= line's media
	endSection := func() {
		if section == "video" && q.HikvisionSDP {
			out = append(out, "a=Media_header:"+HikvisionMediaHeader, "a=appversion:1.0")
		}
	}
	hasBack := false
	for _, l := range lines {
		switch {
		case strings.HasPrefix(l, "s="):
			switch {
			case q.HikvisionSDP:
				l = "s=HIK Media Server V5.5.0"
			case q.DahuaTracks:
				l = "s=Media Server"
			}
			out = append(out, l)
			if q.HikvisionSDP {
				out = append(out, "i=HIK Media Server Session Description : standard", "e=NONE")
			}
			continue
		case strings.HasPrefix(l, "t="):
			out = append(out, l)
			if q.DahuaTracks {
				out = append(out, "a=packetization-supported:DH", "a=x-rtppayload-supported:IV")
			}
			continue
		case strings.HasPrefix(l, "m="):
			endSection()
			section = strings.TrimPrefix(strings.Fields(l)[0], "m=")
			out = append(out, l)
			if section == "video" && q.HikvisionSDP {
				out = append(out, "a=x-dimensions:320,180")
			}
			continue
		case l == "a=sendonly":
			hasBack = true
		case strings.HasPrefix(l, "a=fmtp:") && q.PacketizationMode0:
			l = strings.Replace(l, "packetization-mode=1", "packetization-mode=0", 1)
		}
		out = append(out, l)
	}
	endSection()
	if q.DahuaTracks && !hasBack {
		// gortsplib only offers back channels to clients that send
		// "Require: www.onvif.org/ver20/backchannel"; this camera always does.
		idx := 1
		if c.audio != nil {
			idx++
		}
		idx++ // metadata track
		out = append(out, "m=audio 0 RTP/AVP 0", "a=control:trackID="+fmt.Sprint(idx), "a=rtpmap:0 PCMU/8000", "a=sendonly")
	}
	return []byte(strings.Join(out, "\r\n") + "\r\n")
}

// seiSet holds the prebuilt SEI / AUD / filler NAL units of a camera.
type seiSet struct {
	privateUUID [16]byte
	private     []byte // SEI NAL: types 128, 240, 5 (random UUID)
	signed      []byte // SEI NAL: type 5 (Axis UUID)
	aud         []byte
	filler      []byte
}

func newSEISet(codec string) (seiSet, error) {
	var s seiSet
	if _, err := rand.Read(s.privateUUID[:]); err != nil {
		return s, err
	}
	hdr := []byte{0x06}
	s.aud = []byte{0x09, 0xf0} // primary_pic_type 7 (any), stop bit
	s.filler = append([]byte{0x0c}, bytes.Repeat([]byte{0xff}, 16)...)
	s.filler = append(s.filler, 0x80)
	if codec == CodecH265 {
		hdr = []byte{39 << 1, 0x01}
		s.aud = []byte{35 << 1, 0x01, 0x50} // pic_type 2, stop bit
		s.filler = append([]byte{38 << 1, 0x01}, bytes.Repeat([]byte{0xff}, 16)...)
		s.filler = append(s.filler, 0x80)
	}
	vendor := []byte("HIK-IVS v2 objects=2 line-crossing=1 ")
	analytics := []byte{0x00, 0x00, 0x01, 0x02, 0x00, 0x00, 0x00, 0x03, 0xde, 0xad, 0xbe, 0xef} // exercises emulation prevention
	private := append(append([]byte{}, s.privateUUID[:]...), []byte("vendor-private telemetry")...)
	s.private = buildSEI(hdr, []seiMessage{{128, vendor}, {240, analytics}, {5, private}})
	sig := append(append([]byte{}, axisSignedVideoUUID[:]...), bytes.Repeat([]byte{0x5a}, 64)...)
	s.signed = buildSEI(hdr, []seiMessage{{5, sig}})
	return s, nil
}

type seiMessage struct {
	typ     int
	payload []byte
}

func buildSEI(hdr []byte, msgs []seiMessage) []byte {
	var rbsp []byte
	for _, m := range msgs {
		for v := m.typ; ; v -= 255 {
			if v >= 255 {
				rbsp = append(rbsp, 0xff)
				continue
			}
			rbsp = append(rbsp, byte(v))
			break
		}
		for v := len(m.payload); ; v -= 255 {
			if v >= 255 {
				rbsp = append(rbsp, 0xff)
				continue
			}
			rbsp = append(rbsp, byte(v))
			break
		}
		rbsp = append(rbsp, m.payload...)
	}
	rbsp = append(rbsp, 0x80) // rbsp_trailing_bits
	return epb.Append(append([]byte{}, hdr...), rbsp)
}

// PrivateSEIUUID returns the random user-data-unregistered UUID this camera
// sends with Quirks.PrivateSEI (valid after Initialize).
func (c *Camera) PrivateSEIUUID() [16]byte { return c.sei.privateUUID }

// isParamSet reports whether n is a VPS/SPS/PPS.
func isParamSet(codec string, n []byte) bool {
	if codec == CodecH264 {
		t := n[0] & 0x1f
		return t == 7 || t == 8
	}
	t := (n[0] >> 1) & 0x3f
	return t >= 32 && t <= 34
}

// quirkAU returns the NAL units to send for one clip access unit.
func (c *Camera) quirkAU(au AccessUnit) [][]byte {
	q := c.Quirks
	if !q.ParamsOnlyInSDP && !q.PrivateSEI && !q.SignedSEI && !q.AUDAndFiller {
		return au.NALUs
	}
	out := make([][]byte, 0, len(au.NALUs)+5)
	if q.AUDAndFiller {
		out = append(out, c.sei.aud)
	}
	seiDone := false
	addSEI := func() {
		if seiDone {
			return
		}
		seiDone = true
		if q.PrivateSEI {
			out = append(out, c.sei.private)
		}
		if q.SignedSEI {
			out = append(out, c.sei.signed)
		}
	}
	for _, n := range au.NALUs {
		if isParamSet(c.clip.Codec, n) {
			if !q.ParamsOnlyInSDP {
				out = append(out, n)
			}
			continue
		}
		addSEI() // after the parameter sets, before the first slice
		out = append(out, n)
	}
	addSEI()
	if q.AUDAndFiller {
		out = append(out, c.sei.filler)
	}
	return out
}
