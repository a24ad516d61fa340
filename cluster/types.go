package cluster

import (
	"encoding/json"
	"errors"
	"time"
)

// Member is a node's registration, published under its lease: where the
// other nodes reach it. Each node's HTTP and RTSP ports are its own listen
// ports on its Advertise address.
type Member struct {
	ID        string `json:"id"`
	Advertise string `json:"advertise"`
	HTTPPort  int    `json:"http_port,omitempty"`
	RTSPPort  int    `json:"rtsp_port,omitempty"`
	// RTSPS: the RTSP port speaks TLS; CertSHA256 is the hex SHA-256 of the
	// certificate it presents, which relaying nodes pin (Member.TLSConfig).
	RTSPS      bool      `json:"rtsps,omitempty"`
	CertSHA256 string    `json:"cert_sha256,omitempty"`
	Version    string    `json:"version,omitempty"`
	Started    time.Time `json:"started"`
}

// Owner is what a node knows about one camera's owner.
type Owner struct {
	Camera string
	// Node is the owner's id; "" = no live owner right now (the previous
	// one died or left and the next one has not claimed it yet).
	Node string
	// Self: this node owns the camera and pulls it from the camera.
	Self bool
	// Peer is the owner's registration when another node owns it: relay
	// from Peer.RTSPURL(Camera) with PeerKey.Credential.
	Peer Member
}

// Handler is what the cluster needs from the gateway: to be told who owns
// each camera. Calls come from one goroutine, in order, for the configured
// cameras. A call with Self=false for a camera this node owned means "stop
// pulling it from the camera now": ownership is released in etcd only after
// the call returns, so the next owner never pulls while this one still
// does. Keep calls short (stop or start a puller, switch a source).
type Handler interface {
	OwnerChanged(Owner)
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(Owner)

// OwnerChanged calls f.
func (f HandlerFunc) OwnerChanged(o Owner) { f(o) }

// CameraStatus is the owner's view of a camera, shared with every node
// through the camera's ownership key.
type CameraStatus struct {
	Online     bool   `json:"online"`
	VideoCodec string `json:"video_codec,omitempty"`
	AudioCodec string `json:"audio_codec,omitempty"`
	// LastError must already be free of secrets (camera URLs redacted).
	LastError  string `json:"last_error,omitempty"`
	Reconnects int    `json:"reconnects,omitempty"`
	// BFrames: the main stream reorders frames (WHEP refuses it, 422).
	BFrames bool `json:"b_frames,omitempty"`
}

// CameraInfo is one camera as the cluster sees it: its owner and the
// owner's status of it.
type CameraInfo struct {
	Camera string       `json:"camera"`
	Owner  string       `json:"owner"`
	Status CameraStatus `json:"status"`
}

// ownerValue is the value of live/owners/<camera>.
type ownerValue struct {
	Node   string       `json:"node"`
	Status CameraStatus `json:"status"`
}

// Health is the cluster side of /healthz: Degraded with the reason while
// etcd cannot be reached (the node keeps serving what it owns and changes
// no ownership).
type Health struct {
	Degraded bool      `json:"degraded"`
	Reason   string    `json:"reason,omitempty"`
	Since    time.Time `json:"since"`
}

// Bounds on what is accepted from etcd (written by other nodes, but parsed
// defensively all the same).
const (
	maxValueBytes  = 1 << 20
	maxStringBytes = 1024
)

var errBadValue = errors.New("malformed value")

func decodeMember(b []byte) (Member, error) {
	var m Member
	if len(b) > maxValueBytes || json.Unmarshal(b, &m) != nil || !nodeIDOK(m.ID) ||
		m.Advertise == "" || len(m.Advertise) > 253 || len(m.Version) > maxStringBytes ||
		len(m.CertSHA256) > 128 || m.HTTPPort < 0 || m.HTTPPort > 65535 || m.RTSPPort < 0 || m.RTSPPort > 65535 {
		return Member{}, errBadValue
	}
	return m, nil
}

func decodeOwner(b []byte) (ownerValue, error) {
	var o ownerValue
	if len(b) > maxValueBytes || json.Unmarshal(b, &o) != nil || !nodeIDOK(o.Node) {
		return ownerValue{}, errBadValue
	}
	s := &o.Status
	if len(s.VideoCodec) > 64 || len(s.AudioCodec) > 64 || s.Reconnects < 0 {
		return ownerValue{}, errBadValue
	}
	if len(s.LastError) > maxStringBytes {
		s.LastError = s.LastError[:maxStringBytes]
	}
	return o, nil
}
