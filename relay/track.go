// Package relay is the middle of cordon: one Stream per camera takes the
// access units that ingest depacketized, passes them through the sanitizer
// (relay/sanitize), re-originates them as cordon's own RTP packets (fresh
// timestamps and sequence numbers that stay continuous across camera
// reconnects), keeps the current GOP, and fans the packets out to any number
// of readers (WHEP viewers in relay/whep, RTSP clients in relay/rtspserve).
//
// Packetization happens once per camera and output codec; readers share the
// packets read-only and only rewrite header fields on their own copies. Every
// reader has a bounded queue: a slow reader drops (and counts) its own frames
// and never delays the camera or another reader.
package relay

import (
	"fmt"
	"time"
)

// Kind tells video from audio.
type Kind int

// Track kinds.
const (
	KindVideo Kind = iota + 1
	KindAudio
)

func (k Kind) String() string {
	switch k {
	case KindVideo:
		return "video"
	case KindAudio:
		return "audio"
	}
	return fmt.Sprintf("kind(%d)", int(k))
}

// Codec names one of the formats that may leave the gateway.
type Codec string

// The only codecs cordon re-serves (CONTRACT: "What leaves the gateway").
const (
	CodecH264 Codec = "H264"
	CodecH265 Codec = "H265"
	CodecPCMU Codec = "PCMU"
	CodecPCMA Codec = "PCMA"
	CodecOpus Codec = "Opus"
	CodecAAC  Codec = "AAC" // RTSP re-serve only; not a WebRTC codec
)

// WebRTC reports whether browsers can receive the codec over WebRTC.
func (c Codec) WebRTC() bool { return c != CodecAAC }

// Track describes one elementary stream of a camera that survived track
// selection, as ingest hands it to the relay.
type Track struct {
	Kind      Kind
	Codec     Codec
	ClockRate int
	Channels  int // audio only; 0 means 1
	// ParamSets are the parameter sets the camera announced out of band (SDP
	// sprop-parameter-sets / sprop-vps,sps,pps), in order: H.264 {SPS, PPS},
	// H.265 {VPS, SPS, PPS}. May be empty.
	ParamSets [][]byte
	// AACConfig is the MPEG-4 AudioSpecificConfig (AAC only).
	AACConfig []byte
}

// Unit is one video access unit or one audio frame as depacketized from a
// camera, before sanitizing.
type Unit struct {
	Track int // index into the tracks passed to Stream.CameraConnected
	// PTS is the camera's presentation time. Its origin is arbitrary and it may
	// jump or reset (camera reboot, reconnect): the Stream re-bases it.
	PTS time.Duration
	// AU holds, for video, NAL units without start codes; for audio, one or
	// more codec frames (G.711 sample blocks, Opus packets, AAC access units).
	AU [][]byte
}

// OutTrack is a track as cordon re-serves it. The Stream's packets for this
// track carry PayloadType; outputs that negotiate another payload type
// rewrite it on their copy of the header.
type OutTrack struct {
	Track
	Index       int   // position in Stream.Tracks()
	PayloadType uint8 // payload type of the Stream's packets
	// SSRC of the Stream's packets: random, and kept for as long as the
	// track's codecs are (a camera reconnecting with the same codecs
	// keeps it)
	SSRC uint32
	// ProfileLevelID is the H.264 profile-level-id (hex, 6 digits) derived
	// from the current SPS; empty for other codecs or when no SPS is known.
	ProfileLevelID string
	// BFrames: a video track with B-frames (decode order differs from
	// presentation order; see reorder.go).
	BFrames bool
}
