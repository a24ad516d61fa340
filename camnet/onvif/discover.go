package onvif

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"time"

	"cordon/internal/soap"
	"cordon/ptz"
)

// discovery is what a Client learns about a camera before PTZ commands.
type discovery struct {
	mediaPath, ptzPath string
	profile            string // media profile token with a PTZ configuration
	node               string // its PTZ node token
	caps               ptz.Capabilities
}

// syncTime learns the camera's clock offset from GetSystemDateAndTime
// (asked without credentials, as ONVIF allows; with them if refused).
func (c *Client) syncTime(ctx context.Context) error {
	body := soap.El("tds:GetSystemDateAndTime")
	before := c.Now()
	p, err := c.roundTrip(ctx, "GetSystemDateAndTime", c.devPath, body, false)
	if err != nil {
		if p, err = c.roundTrip(ctx, "GetSystemDateAndTime", c.devPath, body, true); err != nil {
			return err
		}
	}
	utc := p.Path("SystemDateAndTime", "UTCDateTime")
	if utc == nil {
		return errors.New("camera reported no UTC time")
	}
	num := func(path ...string) int {
		n, _ := strconv.Atoi(utc.TextOf(path...))
		return n
	}
	cam := time.Date(num("Date", "Year"), time.Month(num("Date", "Month")), num("Date", "Day"),
		num("Time", "Hour"), num("Time", "Minute"), num("Time", "Second"), 0, time.UTC)
	if cam.Year() < 1970 || cam.Year() > 2200 {
		return errors.New("camera reported an impossible time")
	}
	now := before.Add(c.Now().Sub(before) / 2)
	off := cam.Sub(now).Truncate(time.Second)
	c.mu.Lock()
	c.offset, c.timeSynced = off, c.Now()
	c.mu.Unlock()
	if off > time.Minute || off < -time.Minute {
		c.log.Info("camera clock differs from ours; WS-Security times follow the camera", "offset", off.String())
	}
	return nil
}

// ClockOffset returns the camera's clock minus ours, as last learnt.
func (c *Client) ClockOffset() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.offset
}

// discover runs (once, until it succeeds) the discovery of the media
// and PTZ services, the PTZ profile and node.
func (c *Client) discover(ctx context.Context) (*discovery, error) {
	c.mu.Lock()
	d := c.disc
	c.mu.Unlock()
	if d != nil {
		return d, nil
	}
	if err := c.syncTime(ctx); err != nil {
		c.log.Debug("GetSystemDateAndTime failed; using our clock", "err", err)
	}
	d = &discovery{}
	if err := c.findServices(ctx, d); err != nil {
		return nil, err
	}
	if d.ptzPath == "" || d.mediaPath == "" {
		return nil, &Error{c.CameraID, "GetCapabilities", ErrNoPTZ}
	}
	if err := c.findProfile(ctx, d); err != nil {
		return nil, err
	}
	c.readNode(ctx, d)
	c.mu.Lock()
	if c.disc == nil {
		c.disc = d
	}
	d = c.disc
	c.mu.Unlock()
	return d, nil
}

// findServices asks GetCapabilities and falls back on GetServices.
func (c *Client) findServices(ctx context.Context, d *discovery) error {
	p, err := c.call(ctx, "GetCapabilities", c.devPath,
		soap.El("tds:GetCapabilities", soap.Text("tds:Category", "All")), true)
	if err == nil {
		caps := p.ChildLocal("Capabilities")
		if x := caps.TextOf("Media", "XAddr"); x != "" {
			if d.mediaPath, err = c.servicePath(x); err != nil {
				return &Error{c.CameraID, "GetCapabilities", err}
			}
		}
		if x := caps.TextOf("PTZ", "XAddr"); x != "" {
			if d.ptzPath, err = c.servicePath(x); err != nil {
				return &Error{c.CameraID, "GetCapabilities", err}
			}
		}
		if d.mediaPath != "" && d.ptzPath != "" {
			return nil
		}
	}
	p, serr := c.call(ctx, "GetServices", c.devPath,
		soap.El("tds:GetServices", soap.Text("tds:IncludeCapability", "false")), true)
	if serr != nil {
		if err != nil {
			return err
		}
		return nil // GetCapabilities answered, without PTZ
	}
	for _, s := range p.ChildrenLocal("Service") {
		path, perr := c.servicePath(s.TextOf("XAddr"))
		if perr != nil {
			continue
		}
		switch s.TextOf("Namespace") {
		case soap.NsMedia:
			d.mediaPath = path
		case soap.NsPTZ:
			d.ptzPath = path
		}
	}
	return nil
}

// findProfile picks the first media profile with a PTZ configuration.
func (c *Client) findProfile(ctx context.Context, d *discovery) error {
	p, err := c.call(ctx, "GetProfiles", d.mediaPath, soap.El("trt:GetProfiles"), true)
	if err != nil {
		return err
	}
	for _, prof := range p.ChildrenLocal("Profiles") {
		tok, _ := prof.Attr("token")
		pc := prof.ChildLocal("PTZConfiguration")
		if tok == "" || pc == nil || len(tok) > 64 {
			continue
		}
		d.profile = tok
		d.node = pc.TextOf("NodeToken")
		return nil
	}
	return &Error{c.CameraID, "GetProfiles", ErrNoPTZ}
}

// readNode fills the capabilities from GetNodes; a camera without GetNodes
// is assumed to pan, tilt and zoom, with presets and home to be tried.
func (c *Client) readNode(ctx context.Context, d *discovery) {
	d.caps = ptz.Capabilities{PanTilt: true, Zoom: true, Presets: true, Home: true, Status: true}
	p, err := c.call(ctx, "GetNodes", d.ptzPath, soap.El("tptz:GetNodes"), true)
	if err != nil {
		c.log.Debug("GetNodes failed; assuming pan, tilt, zoom", "err", err)
		return
	}
	nodes := p.ChildrenLocal("PTZNode")
	if len(nodes) == 0 {
		return
	}
	node := nodes[0]
	for _, n := range nodes {
		if t, _ := n.Attr("token"); t == d.node {
			node = n
		}
	}
	spaces := node.ChildLocal("SupportedPTZSpaces")
	d.caps.PanTilt = spaces.ChildLocal("ContinuousPanTiltVelocitySpace") != nil
	d.caps.Zoom = spaces.ChildLocal("ContinuousZoomVelocitySpace") != nil
	if spaces == nil {
		d.caps.PanTilt, d.caps.Zoom = true, true
	}
	if n, err := strconv.Atoi(node.TextOf("MaximumNumberOfPresets")); err == nil && n >= 0 {
		d.caps.MaxPresets = min(n, 10000)
		d.caps.Presets = n > 0
	}
	if h := node.TextOf("HomeSupported"); h != "" {
		d.caps.Home = parseBool(h)
	}
}

func parseBool(s string) bool {
	s = strings.TrimSpace(s)
	return s == "true" || s == "1"
}
