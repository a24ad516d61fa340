package onvifserve

import (
	"crypto/sha256"
	"encoding/hex"
	"net"
	"strconv"

	"cordon/internal/soap"
)

// Tokens: a camera's video source, source configuration, PTZ node and
// PTZ configuration are all named by its id; its main profile (and that
// profile's encoder configuration) too, its sub profile by subToken.
// ONVIF tokens are at most 64 characters, camera ids too.

const maxTokenLen = 64

// subToken is the sub stream profile's token: "<id>.sub" ('.' never
// appears in an id), shortened with a hash for ids near the 64 limit.
func subToken(id string) string {
	if t := id + ".sub"; len(t) <= maxTokenLen {
		return t
	}
	sum := sha256.Sum256([]byte(id))
	return id[:47] + "." + hex.EncodeToString(sum[:6]) + ".sub"
}

// profile is one media profile as shown to a principal.
type profile struct {
	token  string
	cam    Camera
	stream Stream
	sub    bool
}

func profilesOf(cams []Camera) []profile {
	var out []profile
	for _, c := range cams {
		out = append(out, profile{token: c.ID, cam: c, stream: c.Main})
		if c.Sub != nil {
			out = append(out, profile{token: subToken(c.ID), cam: c, stream: *c.Sub, sub: true})
		}
	}
	return out
}

// cameras is what this request's principal may view now.
func (c *call) cameras() []Camera { return c.s.Access.Cameras(c.ctx, c.p) }

// findProfile resolves a profile token among the principal's profiles; a
// camera it may not view and one that does not exist look the same.
func (c *call) findProfile(token string) (profile, *soap.Fault) {
	if token != "" && len(token) <= maxTokenLen {
		for _, p := range profilesOf(c.cameras()) {
			if p.token == token {
				return p, nil
			}
		}
	}
	return profile{}, soap.InvalidArgVal("no such profile", "NoProfile")
}

func mediaOps() map[string]func(*call) ([]soap.Node, *soap.Fault) {
	return map[string]func(*call) ([]soap.Node, *soap.Fault){
		"GetServiceCapabilities": func(*call) ([]soap.Node, *soap.Fault) {
			return one(soap.El("trt:GetServiceCapabilitiesResponse", mediaCaps()))
		},
		"GetProfiles": func(c *call) ([]soap.Node, *soap.Fault) {
			res := soap.El("trt:GetProfilesResponse")
			for _, p := range profilesOf(c.cameras()) {
				res = res.Add(p.node("trt:Profiles"))
			}
			return one(res)
		},
		"GetProfile": func(c *call) ([]soap.Node, *soap.Fault) {
			p, f := c.findProfile(c.req.TextOf("ProfileToken"))
			if f != nil {
				return nil, f
			}
			return one(soap.El("trt:GetProfileResponse", p.node("trt:Profile")))
		},
		"GetVideoSources": func(c *call) ([]soap.Node, *soap.Fault) {
			res := soap.El("trt:GetVideoSourcesResponse")
			for _, cam := range c.cameras() {
				res = res.Add(soap.El("trt:VideoSources", soap.Text("tt:Framerate", ftoa(cam.Main.FPS)),
					resolution("tt:Resolution", cam.Main)).With("token", cam.ID))
			}
			return one(res)
		},
		"GetVideoSourceConfigurations": func(c *call) ([]soap.Node, *soap.Fault) {
			res := soap.El("trt:GetVideoSourceConfigurationsResponse")
			for _, cam := range c.cameras() {
				res = res.Add(sourceConfig("trt:Configurations", cam))
			}
			return one(res)
		},
		"GetVideoSourceConfiguration": func(c *call) ([]soap.Node, *soap.Fault) {
			tok := c.req.TextOf("ConfigurationToken")
			for _, cam := range c.cameras() {
				if cam.ID == tok {
					return one(soap.El("trt:GetVideoSourceConfigurationResponse", sourceConfig("trt:Configuration", cam)))
				}
			}
			return nil, soap.InvalidArgVal("no such configuration", "NoConfig")
		},
		"GetVideoEncoderConfigurations": func(c *call) ([]soap.Node, *soap.Fault) {
			res := soap.El("trt:GetVideoEncoderConfigurationsResponse")
			for _, p := range profilesOf(c.cameras()) {
				res = res.Add(p.encoderConfig("trt:Configurations"))
			}
			return one(res)
		},
		"GetVideoEncoderConfiguration": func(c *call) ([]soap.Node, *soap.Fault) {
			p, f := c.findProfile(c.req.TextOf("ConfigurationToken"))
			if f != nil {
				return nil, soap.InvalidArgVal("no such configuration", "NoConfig")
			}
			return one(soap.El("trt:GetVideoEncoderConfigurationResponse", p.encoderConfig("trt:Configuration")))
		},
		"GetStreamUri": (*call).streamURI,
	}
}

// mediaCaps: RTSP over TCP and UDP unicast, no multicast, no snapshots.
func mediaCaps() soap.Node {
	return soap.Node{Name: "trt:Capabilities"}.With("SnapshotUri", "false").With("Rotation", "false").
		With("VideoSourceMode", "false").With("OSD", "false").
		Add(soap.Node{Name: "trt:ProfileCapabilities"}.With("MaximumNumberOfProfiles", "0"),
			soap.Node{Name: "trt:StreamingCapabilities"}.With("RTPMulticast", "false").With("RTP_TCP", "true").
				With("RTP_RTSP_TCP", "true").With("NonAggregateControl", "false").With("NoRTSPStreaming", "false"))
}

// node is the profile element (fixed: a VMS cannot change or delete it).
func (p profile) node(name string) soap.Node {
	n := soap.El(name, soap.Text("tt:Name", p.name()), sourceConfig("tt:VideoSourceConfiguration", p.cam),
		p.encoderConfig("tt:VideoEncoderConfiguration"))
	if p.cam.PTZ {
		n = n.Add(ptzConfig("tt:PTZConfiguration", p.cam))
	}
	return n.With("token", p.token).With("fixed", "true")
}

func (p profile) name() string {
	n := p.cam.Name
	if n == "" {
		n = p.cam.ID
	}
	if p.sub {
		return n + " (sub)"
	}
	return n
}

func sourceConfig(name string, cam Camera) soap.Node {
	return soap.El(name, soap.Text("tt:Name", cam.ID), soap.Text("tt:UseCount", "1"), soap.Text("tt:SourceToken", cam.ID),
		soap.Node{Name: "tt:Bounds"}.With("x", "0").With("y", "0").
			With("width", itoa(cam.Main.Width)).With("height", itoa(cam.Main.Height))).With("token", cam.ID)
}

// encoderConfig describes the stream as the relay saw it. Media 1 knows
// JPEG, MPEG4 and H264; an H.265 stream is written as "H265", as NVRs
// do. A camera that has not connected yet shows H264 at 0x0 until it
// has.
func (p profile) encoderConfig(name string) soap.Node {
	enc := p.stream.Codec
	if enc == "" {
		enc = "H264"
	}
	return soap.El(name, soap.Text("tt:Name", p.name()), soap.Text("tt:UseCount", "1"),
		soap.Text("tt:Encoding", enc), resolution("tt:Resolution", p.stream), soap.Text("tt:Quality", "0"),
		soap.El("tt:RateControl", soap.Text("tt:FrameRateLimit", itoa(int(p.stream.FPS+0.5))),
			soap.Text("tt:EncodingInterval", "1"), soap.Text("tt:BitrateLimit", "0")),
		soap.El("tt:Multicast", soap.El("tt:Address", soap.Text("tt:Type", "IPv4"), soap.Text("tt:IPv4Address", "0.0.0.0")),
			soap.Text("tt:Port", "0"), soap.Text("tt:TTL", "0"), soap.Text("tt:AutoStart", "false")),
		soap.Text("tt:SessionTimeout", "PT60S")).With("token", p.token)
}

func resolution(name string, s Stream) soap.Node {
	return soap.El(name, soap.Text("tt:Width", itoa(s.Width)), soap.Text("tt:Height", itoa(s.Height)))
}

func ftoa(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

// streamURI answers GetStreamUri with cordon's RTSP re-serve URL on the
// host the client connected to: rtsp://host:port/<camera>[/sub]
// (rtsps:// when the re-serve uses TLS). RTSP over TCP ("RTSP") and RTP
// over UDP ("UDP") are served; multicast and HTTP tunnelling are not.
func (c *call) streamURI() ([]soap.Node, *soap.Fault) {
	p, f := c.findProfile(c.req.TextOf("ProfileToken"))
	if f != nil {
		return nil, f
	}
	setup := c.req.ChildLocal("StreamSetup")
	if st := setup.TextOf("Stream"); st != "" && st != "RTP-Unicast" {
		return nil, soap.InvalidArgVal("only RTP-Unicast streams are served", "InvalidStreamSetup")
	}
	switch proto := setup.TextOf("Transport", "Protocol"); proto {
	case "", "RTSP", "UDP", "TCP":
	default:
		return nil, soap.InvalidArgVal("only RTSP (TCP) and UDP transports are served", "InvalidStreamSetup")
	}
	scheme := "rtsp"
	if c.s.RTSPTLS {
		scheme = "rtsps"
	}
	path := "/" + p.cam.ID
	if p.sub {
		path += "/sub"
	}
	uri := scheme + "://" + net.JoinHostPort(c.host, strconv.Itoa(c.s.RTSPPort)) + path
	return one(soap.El("trt:GetStreamUriResponse", soap.El("trt:MediaUri",
		soap.Text("tt:Uri", uri), soap.Text("tt:InvalidAfterConnect", "false"),
		soap.Text("tt:InvalidAfterReboot", "false"), soap.Text("tt:Timeout", "PT0S"))))
}
