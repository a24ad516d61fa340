package onvifserve

import (
	"encoding/xml"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"cordon/internal/soap"
	"cordon/ptz"
)

// ONVIF's generic spaces (the only ones the face speaks).
const (
	spacePTVel = "http://www.onvif.org/ver10/tptz/PanTiltSpaces/VelocityGenericSpace"
	spaceZVel  = "http://www.onvif.org/ver10/tptz/ZoomSpaces/VelocityGenericSpace"
	spacePTPos = "http://www.onvif.org/ver10/tptz/PanTiltSpaces/PositionGenericSpace"
	spaceZPos  = "http://www.onvif.org/ver10/tptz/ZoomSpaces/PositionGenericSpace"
	// nsCordon names cordon's own fault subcodes.
	nsCordon = "urn:cordon:onvif"
)

// defaultMoveTimeout is what a ContinuousMove without Timeout gets: the
// longest move cordon allows (ptz clamps to 0.1..5 s); a camera never
// keeps moving because a VMS forgot to send Stop. Joysticks re-send.
const defaultMoveTimeout = ptz.DefaultMaxMoveTimeout

func ptzOps() map[string]func(*call) ([]soap.Node, *soap.Fault) {
	return map[string]func(*call) ([]soap.Node, *soap.Fault){
		"GetServiceCapabilities": func(*call) ([]soap.Node, *soap.Fault) {
			return one(soap.El("tptz:GetServiceCapabilitiesResponse", ptzCaps()))
		},
		"GetNodes":                (*call).nodes,
		"GetNode":                 (*call).node,
		"GetConfigurations":       (*call).configurations,
		"GetConfiguration":        (*call).configuration,
		"GetConfigurationOptions": (*call).configurationOptions,
		"ContinuousMove":          (*call).continuousMove,
		"Stop": func(c *call) ([]soap.Node, *soap.Fault) {
			return c.command("tptz:StopResponse", ptz.Command{Stop: true})
		},
		"GotoPreset": func(c *call) ([]soap.Node, *soap.Fault) {
			return c.command("tptz:GotoPresetResponse", ptz.Command{Preset: c.req.TextOf("PresetToken")})
		},
		"GotoHomePosition": func(c *call) ([]soap.Node, *soap.Fault) {
			return c.command("tptz:GotoHomePositionResponse", ptz.Command{Home: true})
		},
		"GetPresets": (*call).presets,
		"GetStatus":  (*call).status,
	}
}

func ptzCaps() soap.Node {
	return soap.Node{Name: "tptz:Capabilities"}.With("EFlip", "false").With("Reverse", "false").
		With("GetCompatibleConfigurations", "false").With("MoveStatus", "true").With("StatusPosition", "true")
}

func ptzConfig(name string, cam Camera) soap.Node {
	return soap.El(name, soap.Text("tt:Name", cam.ID), soap.Text("tt:UseCount", "1"), soap.Text("tt:NodeToken", cam.ID),
		soap.Text("tt:DefaultContinuousPanTiltVelocitySpace", spacePTVel),
		soap.Text("tt:DefaultContinuousZoomVelocitySpace", spaceZVel),
		soap.Text("tt:DefaultPTZTimeout", xsDuration(defaultMoveTimeout))).With("token", cam.ID)
}

// ptzCameras are the principal's cameras it may steer.
func (c *call) ptzCameras() []Camera {
	var out []Camera
	for _, cam := range c.cameras() {
		if cam.PTZ && c.s.Access.PTZ(cam.ID) != nil {
			out = append(out, cam)
		}
	}
	return out
}

func (c *call) ptzCamera(token, field string) (Camera, PTZControl, *soap.Fault) {
	if token != "" {
		for _, cam := range c.ptzCameras() {
			if cam.ID == token {
				return cam, c.s.Access.PTZ(cam.ID), nil
			}
		}
	}
	return Camera{}, nil, soap.InvalidArgVal("no such PTZ "+strings.ToLower(strings.TrimSuffix(field, "Token")), "NoEntity")
}

// ptzProfile resolves a PTZ request's ProfileToken (main or sub profile
// of a camera the principal may steer).
func (c *call) ptzProfile() (Camera, PTZControl, *soap.Fault) {
	p, f := c.findProfile(c.req.TextOf("ProfileToken"))
	if f != nil {
		return Camera{}, nil, f
	}
	ctl := c.s.Access.PTZ(p.cam.ID)
	if !p.cam.PTZ || ctl == nil {
		return Camera{}, nil, soap.InvalidArgVal("the profile has no PTZ configuration", "NoPTZProfile")
	}
	return p.cam, ctl, nil
}

// nodeOf describes the camera's PTZ from its capabilities (asked of the
// camera once and cached by ptz.Control; unknown while unreachable).
func nodeOf(name string, cam Camera, st ptz.Status) soap.Node {
	rng := func(n, lo string) soap.Node { return soap.El(n, soap.Text("tt:Min", lo), soap.Text("tt:Max", "1")) }
	spaces := soap.El("tt:SupportedPTZSpaces")
	caps := st.Capabilities
	if caps == nil || caps.PanTilt {
		spaces = spaces.Add(soap.El("tt:ContinuousPanTiltVelocitySpace", soap.Text("tt:URI", spacePTVel), rng("tt:XRange", "-1"), rng("tt:YRange", "-1")))
	}
	if caps == nil || caps.Zoom {
		spaces = spaces.Add(soap.El("tt:ContinuousZoomVelocitySpace", soap.Text("tt:URI", spaceZVel), rng("tt:XRange", "-1")))
	}
	presets, home := 0, false
	if caps != nil {
		if caps.Presets {
			presets = max(caps.MaxPresets, len(st.Presets))
		}
		home = caps.Home
	}
	return soap.El(name, soap.Text("tt:Name", cam.ID), spaces,
		soap.Text("tt:MaximumNumberOfPresets", itoa(presets)), soap.Text("tt:HomeSupported", strconv.FormatBool(home))).
		With("token", cam.ID).With("FixedHomePosition", "true")
}

// statuses asks every camera's Control for its status, four at a time
// (each is cached by ptz.Control and bounded by the call's context).
func (c *call) statuses(cams []Camera) []ptz.Status {
	out := make([]ptz.Status, len(cams))
	sem := make(chan struct{}, 4)
	var wg sync.WaitGroup
	for i, cam := range cams {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			out[i] = c.s.Access.PTZ(cam.ID).Status(c.ctx)
		}()
	}
	wg.Wait()
	return out
}

func (c *call) nodes() ([]soap.Node, *soap.Fault) {
	cams := c.ptzCameras()
	res := soap.El("tptz:GetNodesResponse")
	for i, st := range c.statuses(cams) {
		res = res.Add(nodeOf("tptz:PTZNode", cams[i], st))
	}
	return one(res)
}

func (c *call) node() ([]soap.Node, *soap.Fault) {
	cam, ctl, f := c.ptzCamera(c.req.TextOf("NodeToken"), "NodeToken")
	if f != nil {
		return nil, f
	}
	return one(soap.El("tptz:GetNodeResponse", nodeOf("tptz:PTZNode", cam, ctl.Status(c.ctx))))
}

func (c *call) configurations() ([]soap.Node, *soap.Fault) {
	res := soap.El("tptz:GetConfigurationsResponse")
	for _, cam := range c.ptzCameras() {
		res = res.Add(ptzConfig("tptz:PTZConfiguration", cam))
	}
	return one(res)
}

func (c *call) configuration() ([]soap.Node, *soap.Fault) {
	cam, _, f := c.ptzCamera(c.req.TextOf("PTZConfigurationToken"), "ConfigurationToken")
	if f != nil {
		return nil, f
	}
	return one(soap.El("tptz:GetConfigurationResponse", ptzConfig("tptz:PTZConfiguration", cam)))
}

func (c *call) configurationOptions() ([]soap.Node, *soap.Fault) {
	cam, ctl, f := c.ptzCamera(c.req.TextOf("ConfigurationToken"), "ConfigurationToken")
	if f != nil {
		return nil, f
	}
	node := nodeOf("x", cam, ctl.Status(c.ctx))
	spaces := node.Children[1]
	return one(soap.El("tptz:GetConfigurationOptionsResponse", soap.El("tptz:PTZConfigurationOptions",
		soap.El("tt:Spaces", spaces.Children...),
		soap.El("tt:PTZTimeout", soap.Text("tt:Min", xsDuration(ptz.DefaultMinMoveTimeout)), soap.Text("tt:Max", xsDuration(ptz.DefaultMaxMoveTimeout))))))
}

func (c *call) presets() ([]soap.Node, *soap.Fault) {
	_, ctl, f := c.ptzProfile()
	if f != nil {
		return nil, f
	}
	st := ctl.Status(c.ctx)
	res := soap.El("tptz:GetPresetsResponse")
	for _, p := range st.Presets {
		res = res.Add(soap.El("tptz:Preset", soap.Text("tt:Name", p.Name)).With("token", p.Token))
	}
	return one(res)
}

func (c *call) status() ([]soap.Node, *soap.Fault) {
	_, ctl, f := c.ptzProfile()
	if f != nil {
		return nil, f
	}
	st := ctl.Status(c.ctx)
	ps := soap.El("tptz:PTZStatus")
	if cs := st.Status; cs != nil {
		if pos := cs.Position; pos != nil {
			ps = ps.Add(soap.El("tt:Position",
				soap.Node{Name: "tt:PanTilt"}.With("x", ftoa(pos.Pan)).With("y", ftoa(pos.Tilt)).With("space", spacePTPos),
				soap.Node{Name: "tt:Zoom"}.With("x", ftoa(pos.Zoom)).With("space", spaceZPos)))
		}
		ms := map[bool]string{true: "MOVING", false: "IDLE"}[cs.Moving]
		ps = ps.Add(soap.El("tt:MoveStatus", soap.Text("tt:PanTilt", ms), soap.Text("tt:Zoom", ms)))
	}
	ps = ps.Add(soap.Text("tt:UtcTime", c.s.Now().UTC().Format(time.RFC3339)))
	return one(soap.El("tptz:GetStatusResponse", ps))
}

func (c *call) continuousMove() ([]soap.Node, *soap.Fault) {
	vel, err := readVelocity(c.req.ChildLocal("Velocity"))
	if err != nil {
		return nil, soap.InvalidArgVal(err.Error(), "InvalidVelocity")
	}
	timeout := defaultMoveTimeout
	if t := c.req.TextOf("Timeout"); t != "" {
		if timeout, err = parseXSDuration(t); err != nil {
			return nil, soap.InvalidArgVal(err.Error(), "")
		}
	}
	ms := max(int(timeout/time.Millisecond), 1)
	return c.command("tptz:ContinuousMoveResponse", ptz.Command{Move: &vel, TimeoutMS: ms})
}

// command runs one PTZ command: the profile, then the ptz right (the
// owner's decision, with the principal's priority), then the lock and the
// camera through ptz.Control.
func (c *call) command(resp string, cmd ptz.Command) ([]soap.Node, *soap.Fault) {
	p, f := c.findProfile(c.req.TextOf("ProfileToken"))
	if f != nil {
		return nil, f
	}
	cam, ctl := p.cam, c.s.Access.PTZ(p.cam.ID)
	if ctl == nil {
		return nil, soap.InvalidArgVal("the profile has no PTZ configuration", "NoPTZProfile")
	}
	// the camera can be steered: the owner's authorizer decides (and
	// audits a denial), as for the HTTP door, whatever the profile showed
	prio, err := c.s.Access.AuthorizePTZ(c.ctx, c.p, cam.ID, c.remote)
	if err != nil || prio <= 0 {
		return nil, soap.NotAuthorized()
	}
	err = ctl.Do(c.ctx, ptz.Controller{Name: c.p.Name, Priority: prio, Remote: c.remote, Protocol: "onvif"}, cmd)
	c.s.Access.PTZGranted(cam.ID, c.p) // holds control even if the camera failed the command
	if err != nil {
		c.s.log.Info("ONVIF PTZ command refused", "camera", cam.ID, "actor", c.p.Name, "remote", c.remote, "err", err)
		return nil, ptzFault(err, cmd)
	}
	return one(soap.El(resp))
}

// ptzFault maps ptz's answers to ONVIF faults a VMS shows: a conflict is
// Receiver ter:Action with cordon's PTZControlHeld subcode and a reason
// naming the holder and until when.
func ptzFault(err error, cmd ptz.Command) *soap.Fault {
	var ce *ptz.ConflictError
	var ie *ptz.InvalidError
	switch {
	case errors.As(err, &ce):
		f := soap.NewFault(soap.CodeReceiver, ce.Error(), "Action")
		f.Subcodes = append(f.Subcodes, xml.Name{Space: nsCordon, Local: "PTZControlHeld"})
		f.Detail = fmt.Sprintf("holder=%s until=%s", ce.Holder, ce.Until.UTC().Format(time.RFC3339))
		return f
	case errors.As(err, &ie):
		if cmd.Preset != "" {
			return soap.InvalidArgVal(ie.Error(), "NoToken")
		}
		return soap.InvalidArgVal(ie.Error(), "")
	case errors.Is(err, ptz.ErrNoPriority):
		return soap.NotAuthorized()
	case errors.Is(err, ptz.ErrRateLimited):
		f := soap.NewFault(soap.CodeReceiver, err.Error(), "Action")
		f.Subcodes = append(f.Subcodes, xml.Name{Space: nsCordon, Local: "TooManyCommands"})
		return f
	case ptz.StatusCode(err) == http.StatusInternalServerError:
		// not one of ptz's own answers: say no more than the HTTP door does
		return soap.NewFault(soap.CodeReceiver, "internal error", "Action")
	}
	return soap.NewFault(soap.CodeReceiver, err.Error(), "Action")
}

// readVelocity reads PanTilt x/y and Zoom x in the generic velocity
// spaces (another space is refused: cordon cannot translate it).
func readVelocity(v *soap.Element) (ptz.Velocity, error) {
	var out ptz.Velocity
	if v == nil {
		return out, errors.New("ContinuousMove without Velocity")
	}
	read := func(e *soap.Element, attr, space string, dst *float64) error {
		if e == nil {
			return nil
		}
		if sp, ok := e.Attr("space"); ok && sp != space {
			return errors.New("only the generic velocity spaces are supported")
		}
		s, ok := e.Attr(attr)
		if !ok {
			return nil
		}
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || math.IsNaN(f) || f < -1 || f > 1 {
			return fmt.Errorf("velocity %s must be a number in -1..1", attr)
		}
		*dst = f
		return nil
	}
	pt, z := v.ChildLocal("PanTilt"), v.ChildLocal("Zoom")
	return out, errors.Join(read(pt, "x", spacePTVel, &out.Pan), read(pt, "y", spacePTVel, &out.Tilt), read(z, "x", spaceZVel, &out.Zoom))
}

// parseXSDuration reads the xs:duration forms ONVIF clients send
// ("PT1.5S", "PT1M", "PT0H0M2S", "P0DT0.5S"), up to one hour.
func parseXSDuration(s string) (time.Duration, error) {
	bad := fmt.Errorf("bad duration %q", soap.Clip(s, 32))
	if len(s) > 40 || !strings.HasPrefix(s, "P") {
		return 0, bad
	}
	date, tpart, hasT := strings.Cut(s[1:], "T")
	if date != "" && date != "0D" {
		return 0, bad
	}
	if hasT && tpart == "" {
		return 0, bad
	}
	var d time.Duration
	last := -1
	for tpart != "" {
		i := strings.IndexAny(tpart, "HMS")
		if i <= 0 {
			return 0, bad
		}
		order := strings.IndexByte("HMS", tpart[i])
		f, err := strconv.ParseFloat(tpart[:i], 64)
		if err != nil || f < 0 || math.IsInf(f, 0) || order <= last || f > 3600 {
			return 0, bad
		}
		last = order
		d += time.Duration(f * float64([]time.Duration{time.Hour, time.Minute, time.Second}[order]))
		tpart = tpart[i+1:]
	}
	if d > time.Hour {
		return 0, bad
	}
	return d, nil
}

func xsDuration(d time.Duration) string {
	return "PT" + strconv.FormatFloat(d.Seconds(), 'f', -1, 64) + "S"
}
