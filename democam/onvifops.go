package democam

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"cordon/internal/soap"
)

const (
	profileToken = "Profile_1"
	subProfile   = "Profile_2" // a profile without PTZ, as cameras list for sub streams
	ptzNodeToken = "PTZNode_1"
	spacePTVel   = "http://www.onvif.org/ver10/tptz/PanTiltSpaces/VelocityGenericSpace"
	spaceZVel    = "http://www.onvif.org/ver10/tptz/ZoomSpaces/VelocityGenericSpace"
	spacePTPos   = "http://www.onvif.org/ver10/tptz/PanTiltSpaces/PositionGenericSpace"
	spaceZPos    = "http://www.onvif.org/ver10/tptz/ZoomSpaces/PositionGenericSpace"
)

func one(n soap.Node) ([]soap.Node, *soap.Fault) { return []soap.Node{n}, nil }

func (s *onvifServer) deviceOps() map[string]opFunc {
	m := s.mgmt
	return map[string]opFunc{
		"GetSystemDateAndTime": func(*soap.Element) ([]soap.Node, *soap.Fault) { return one(s.dateTime()) },
		"GetDeviceInformation": func(*soap.Element) ([]soap.Node, *soap.Fault) {
			return one(soap.El("tds:GetDeviceInformationResponse",
				soap.Text("tds:Manufacturer", "cordon democam"), soap.Text("tds:Model", "PTZ-1"),
				soap.Text("tds:FirmwareVersion", "1.0"), soap.Text("tds:SerialNumber", s.cam.ID),
				soap.Text("tds:HardwareId", "democam-ptz")))
		},
		"GetCapabilities": func(*soap.Element) ([]soap.Node, *soap.Fault) {
			if s.q.NoGetCapabilities {
				return nil, soap.ActionNotSupported()
			}
			return one(soap.El("tds:GetCapabilitiesResponse", soap.El("tds:Capabilities",
				soap.El("tt:Device", soap.Text("tt:XAddr", s.xaddr(DevicePath))),
				soap.El("tt:Media", soap.Text("tt:XAddr", s.xaddr(MediaPath))),
				soap.El("tt:PTZ", soap.Text("tt:XAddr", s.xaddr(PTZPath))),
				// a vendor extension, as Hikvision and Dahua add
				soap.El("tt:Extension", soap.Text("vnd:DemoCapabilities", "1").With("xmlns:vnd", "urn:democam:vendor")))))
		},
		"GetServices": func(*soap.Element) ([]soap.Node, *soap.Fault) {
			res := soap.El("tds:GetServicesResponse")
			for _, sv := range [][2]string{{soap.NsDevice, DevicePath}, {soap.NsMedia, MediaPath}, {soap.NsPTZ, PTZPath}} {
				res = res.Add(soap.El("tds:Service", soap.Text("tds:Namespace", sv[0]), soap.Text("tds:XAddr", s.xaddr(sv[1])),
					soap.El("tds:Version", soap.Text("tt:Major", "2"), soap.Text("tt:Minor", "60"))))
			}
			return one(res)
		},
		"GetNTP":                   func(*soap.Element) ([]soap.Node, *soap.Fault) { return one(m.getNTP()) },
		"SetNTP":                   func(r *soap.Element) ([]soap.Node, *soap.Fault) { return one(m.setNTP(r)) },
		"GetDNS":                   func(*soap.Element) ([]soap.Node, *soap.Fault) { return one(m.getDNS()) },
		"SetDNS":                   func(r *soap.Element) ([]soap.Node, *soap.Fault) { return wrap(m.setDNS(r)) },
		"GetNetworkDefaultGateway": func(*soap.Element) ([]soap.Node, *soap.Fault) { return one(m.getGateway()) },
		"SetNetworkDefaultGateway": func(r *soap.Element) ([]soap.Node, *soap.Fault) { return wrap(m.setGateway(r)) },
		"GetNetworkProtocols":      func(*soap.Element) ([]soap.Node, *soap.Fault) { return one(m.getProtocols()) },
		"SetNetworkProtocols":      func(r *soap.Element) ([]soap.Node, *soap.Fault) { return wrap(m.setProtocols(r)) },
		"GetDiscoveryMode":         func(*soap.Element) ([]soap.Node, *soap.Fault) { return one(m.getDiscovery()) },
		"GetNetworkInterfaces":     func(*soap.Element) ([]soap.Node, *soap.Fault) { return one(s.networkInterfaces()) },
		"SetDiscoveryMode":         func(r *soap.Element) ([]soap.Node, *soap.Fault) { return wrap(m.setDiscovery(r)) },
		"SetSystemFactoryDefault": func(*soap.Element) ([]soap.Node, *soap.Fault) {
			s.cam.FactoryReset()
			return one(soap.El("tds:SetSystemFactoryDefaultResponse"))
		},
	}
}

func wrap(n soap.Node, f *soap.Fault) ([]soap.Node, *soap.Fault) {
	if f != nil {
		return nil, f
	}
	return one(n)
}

func (s *onvifServer) dateTime() soap.Node {
	t := time.Now().Add(s.q.ClockOffset).UTC()
	it := func(name string, v int) soap.Node { return soap.Text(name, strconv.Itoa(v)) }
	return soap.El("tds:GetSystemDateAndTimeResponse", soap.El("tds:SystemDateAndTime",
		soap.Text("tt:DateTimeType", "NTP"), soap.Text("tt:DaylightSavings", "false"),
		soap.El("tt:TimeZone", soap.Text("tt:TZ", "UTC0")),
		soap.El("tt:UTCDateTime",
			soap.El("tt:Time", it("tt:Hour", t.Hour()), it("tt:Minute", t.Minute()), it("tt:Second", t.Second())),
			soap.El("tt:Date", it("tt:Year", t.Year()), it("tt:Month", int(t.Month())), it("tt:Day", t.Day())))))
}

func (s *onvifServer) mediaOps() map[string]opFunc {
	return map[string]opFunc{
		"GetProfiles": func(*soap.Element) ([]soap.Node, *soap.Fault) {
			enc := func(w, h int) soap.Node {
				return soap.El("tt:VideoEncoderConfiguration", soap.Text("tt:Name", "H264"), soap.Text("tt:Encoding", "H264"),
					soap.El("tt:Resolution", soap.Text("tt:Width", strconv.Itoa(w)), soap.Text("tt:Height", strconv.Itoa(h)))).With("token", "VEC_1")
			}
			main := soap.El("trt:Profiles", soap.Text("tt:Name", "mainStream"), enc(ptzWidth, ptzHeight),
				soap.El("tt:PTZConfiguration", soap.Text("tt:Name", "PTZ"), soap.Text("tt:UseCount", "2"),
					soap.Text("tt:NodeToken", ptzNodeToken),
					soap.Text("tt:DefaultContinuousPanTiltVelocitySpace", spacePTVel),
					soap.Text("tt:DefaultContinuousZoomVelocitySpace", spaceZVel),
					soap.Text("tt:DefaultPTZTimeout", "PT5S")).With("token", "PTZConf_1")).
				With("token", profileToken).With("fixed", "true")
			sw, sh := ptzWidth, ptzHeight
			if s.cam.SubURL() != "" {
				sw, sh = ptzSubWidth, ptzSubHeight
			}
			sub := soap.El("trt:Profiles", soap.Text("tt:Name", "subStream"), enc(sw, sh)).
				With("token", subProfile).With("fixed", "true")
			return one(soap.El("trt:GetProfilesResponse", main, sub))
		},
		"GetStreamUri": func(r *soap.Element) ([]soap.Node, *soap.Fault) {
			p := r.TextOf("ProfileToken")
			if p != profileToken && p != subProfile {
				return nil, soap.InvalidArgVal("no such profile", "NoProfile")
			}
			uri := s.cam.URL()
			if p == subProfile && s.cam.SubURL() != "" {
				uri = s.cam.SubURL()
			}
			return one(soap.El("trt:GetStreamUriResponse", soap.El("trt:MediaUri",
				soap.Text("tt:Uri", uri), soap.Text("tt:InvalidAfterConnect", "false"),
				soap.Text("tt:InvalidAfterReboot", "false"), soap.Text("tt:Timeout", "PT60S"))))
		},
	}
}

// (Function over 50 lines: the PTZ operation table.)
func (s *onvifServer) ptzOps() map[string]opFunc {
	st := s.cam.state
	profile := func(r *soap.Element) *soap.Fault {
		if r.TextOf("ProfileToken") != profileToken {
			return soap.InvalidArgVal("no such profile or no PTZ on it", "NoProfile")
		}
		return nil
	}
	return map[string]opFunc{
		"GetNodes": func(*soap.Element) ([]soap.Node, *soap.Fault) {
			presets, home := "8", "true"
			if s.q.ContinuousOnly {
				presets, home = "0", "false"
			}
			rng := func(name string) soap.Node {
				return soap.El(name, soap.Text("tt:Min", "-1"), soap.Text("tt:Max", "1"))
			}
			return one(soap.El("tptz:GetNodesResponse", soap.El("tptz:PTZNode", soap.Text("tt:Name", "Dome"),
				soap.El("tt:SupportedPTZSpaces",
					soap.El("tt:ContinuousPanTiltVelocitySpace", soap.Text("tt:URI", spacePTVel), rng("tt:XRange"), rng("tt:YRange")),
					soap.El("tt:ContinuousZoomVelocitySpace", soap.Text("tt:URI", spaceZVel), rng("tt:XRange"))),
				soap.Text("tt:MaximumNumberOfPresets", presets), soap.Text("tt:HomeSupported", home)).With("token", ptzNodeToken)))
		},
		"ContinuousMove": func(r *soap.Element) ([]soap.Node, *soap.Fault) {
			if f := profile(r); f != nil {
				return nil, f
			}
			v, err := readVelocity(r.ChildLocal("Velocity"))
			if err != nil {
				return nil, soap.InvalidArgVal(err.Error(), "InvalidVelocity")
			}
			timeout := time.Duration(0)
			if t := r.TextOf("Timeout"); t != "" && !s.q.IgnoreTimeout {
				if timeout, err = parseXSDuration(t); err != nil {
					return nil, soap.InvalidArgVal(err.Error(), "")
				}
			}
			st.continuousMove(v, timeout)
			return one(soap.El("tptz:ContinuousMoveResponse"))
		},
		"Stop": func(r *soap.Element) ([]soap.Node, *soap.Fault) {
			if f := profile(r); f != nil {
				return nil, f
			}
			st.stop()
			return one(soap.El("tptz:StopResponse"))
		},
		"GetPresets": func(r *soap.Element) ([]soap.Node, *soap.Fault) {
			if f := s.presetsOK(r, profile); f != nil {
				return nil, f
			}
			res := soap.El("tptz:GetPresetsResponse")
			for _, p := range demoPresets {
				res = res.Add(soap.El("tptz:Preset", soap.Text("tt:Name", p.name), soap.El("tt:PTZPosition",
					soap.El("tt:PanTilt").With("x", ftoa(p.pos[0])).With("y", ftoa(p.pos[1])).With("space", spacePTPos),
					soap.El("tt:Zoom").With("x", ftoa(p.pos[2])).With("space", spaceZPos))).With("token", p.token))
			}
			return one(res)
		},
		"GotoPreset": func(r *soap.Element) ([]soap.Node, *soap.Fault) {
			if f := s.presetsOK(r, profile); f != nil {
				return nil, f
			}
			for _, p := range demoPresets {
				if p.token == r.TextOf("PresetToken") {
					st.gotoPosition(p.pos)
					return one(soap.El("tptz:GotoPresetResponse"))
				}
			}
			return nil, soap.InvalidArgVal("no such preset", "NoToken")
		},
		"GotoHomePosition": func(r *soap.Element) ([]soap.Node, *soap.Fault) {
			if f := s.presetsOK(r, profile); f != nil {
				return nil, f
			}
			st.gotoPosition(ptzAxes{})
			return one(soap.El("tptz:GotoHomePositionResponse"))
		},
		"GetStatus": func(r *soap.Element) ([]soap.Node, *soap.Fault) {
			if f := profile(r); f != nil {
				return nil, f
			}
			pos, moving := st.position()
			ms := map[bool]string{true: "MOVING", false: "IDLE"}[moving]
			return one(soap.El("tptz:GetStatusResponse", soap.El("tptz:PTZStatus",
				soap.El("tt:Position",
					soap.El("tt:PanTilt").With("x", ftoa(pos[0])).With("y", ftoa(pos[1])).With("space", spacePTPos),
					soap.El("tt:Zoom").With("x", ftoa(pos[2])).With("space", spaceZPos)),
				soap.El("tt:MoveStatus", soap.Text("tt:PanTilt", ms), soap.Text("tt:Zoom", ms)),
				soap.Text("tt:UtcTime", time.Now().UTC().Format(time.RFC3339)))))
		},
	}
}

func (s *onvifServer) presetsOK(r *soap.Element, profile func(*soap.Element) *soap.Fault) *soap.Fault {
	if s.q.ContinuousOnly {
		return soap.ActionNotSupported()
	}
	return profile(r)
}

type demoPreset struct {
	token, name string
	pos         ptzAxes
}

// demoPresets are the PTZ camera's stored positions.
var demoPresets = []demoPreset{
	{"1", "Gate", ptzAxes{-0.5, 0.2, 0.3}},
	{"2", "Yard", ptzAxes{0.6, -0.3, 0}},
	{"3", "Door close-up", ptzAxes{0.1, 0.1, 1}},
}

func ftoa(f float64) string { return strconv.FormatFloat(f, 'f', 4, 64) }

func readVelocity(v *soap.Element) (ptzAxes, error) {
	var out ptzAxes
	read := func(e *soap.Element, attr string, i int) error {
		if e == nil {
			return nil
		}
		s, ok := e.Attr(attr)
		if !ok {
			return nil
		}
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || math.IsNaN(f) || f < -1 || f > 1 {
			return fmt.Errorf("velocity %s out of range", attr)
		}
		out[i] = f
		return nil
	}
	return out, errors.Join(read(v.ChildLocal("PanTilt"), "x", 0), read(v.ChildLocal("PanTilt"), "y", 1), read(v.ChildLocal("Zoom"), "x", 2))
}

// parseXSDuration reads the xs:duration forms ONVIF clients send
// ("PT1.5S", "PT1M", "PT0H0M2S", "P0DT0.5S"), up to one day.
func parseXSDuration(s string) (time.Duration, error) {
	bad := fmt.Errorf("bad duration %q", soap.Clip(s, 32))
	if len(s) > 40 || !strings.HasPrefix(s, "P") {
		return 0, bad
	}
	date, tpart, _ := strings.Cut(s[1:], "T")
	var d time.Duration
	if date != "" {
		n, err := strconv.Atoi(strings.TrimSuffix(date, "D"))
		if err != nil || !strings.HasSuffix(date, "D") || n != 0 {
			return 0, bad
		}
	}
	for tpart != "" {
		i := strings.IndexAny(tpart, "HMS")
		if i <= 0 {
			return 0, bad
		}
		f, err := strconv.ParseFloat(tpart[:i], 64)
		if err != nil || f < 0 {
			return 0, bad
		}
		unit := map[byte]time.Duration{'H': time.Hour, 'M': time.Minute, 'S': time.Second}[tpart[i]]
		d += time.Duration(f * float64(unit))
		tpart = tpart[i+1:]
	}
	if d > 24*time.Hour {
		return 0, bad
	}
	return d, nil
}
