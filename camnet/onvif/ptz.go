package onvif

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"cordon/internal/soap"
	"cordon/ptz"
)

var _ ptz.Camera = (*Client)(nil)

// maxPresets bounds how many presets are read from an answer.
const maxPresets = 512

// Capabilities implements ptz.Camera.
func (c *Client) Capabilities(ctx context.Context) (ptz.Capabilities, error) {
	d, err := c.discover(ctx)
	if err != nil {
		return ptz.Capabilities{}, err
	}
	return d.caps, nil
}

// ContinuousMove implements ptz.Camera: velocity on the axes the camera
// has, with the ONVIF Timeout so that the camera stops by itself.
func (c *Client) ContinuousMove(ctx context.Context, v ptz.Velocity, timeout time.Duration) error {
	d, err := c.discover(ctx)
	if err != nil {
		return err
	}
	vel := soap.El("tptz:Velocity")
	if d.caps.PanTilt {
		vel = vel.Add(soap.El("tt:PanTilt").With("x", num(v.Pan)).With("y", num(v.Tilt)))
	}
	if d.caps.Zoom {
		vel = vel.Add(soap.El("tt:Zoom").With("x", num(v.Zoom)))
	}
	body := soap.El("tptz:ContinuousMove", soap.Text("tptz:ProfileToken", d.profile), vel,
		soap.Text("tptz:Timeout", xsDuration(timeout)))
	_, err = c.ptzCall(ctx, "ContinuousMove", d.ptzPath, body)
	return err
}

// Stop implements ptz.Camera (pan, tilt and zoom).
func (c *Client) Stop(ctx context.Context) error {
	d, err := c.discover(ctx)
	if err != nil {
		return err
	}
	body := soap.El("tptz:Stop", soap.Text("tptz:ProfileToken", d.profile),
		soap.Text("tptz:PanTilt", "true"), soap.Text("tptz:Zoom", "true"))
	_, err = c.ptzCall(ctx, "Stop", d.ptzPath, body)
	return err
}

// Presets implements ptz.Camera. Presets with unusable tokens (empty, too
// long, odd characters) are left out.
func (c *Client) Presets(ctx context.Context) ([]ptz.Preset, error) {
	d, err := c.discover(ctx)
	if err != nil {
		return nil, err
	}
	p, err := c.ptzCall(ctx, "GetPresets", d.ptzPath, soap.El("tptz:GetPresets", soap.Text("tptz:ProfileToken", d.profile)))
	if err != nil {
		return nil, err
	}
	out := []ptz.Preset{}
	for _, e := range p.ChildrenLocal("Preset") {
		tok, _ := e.Attr("token")
		if ptz.ValidPresetToken(tok) != nil {
			continue
		}
		name := soap.Clip(e.TextOf("Name"), 64)
		if name == "" {
			name = tok
		}
		out = append(out, ptz.Preset{Token: tok, Name: name})
		if len(out) == maxPresets {
			break
		}
	}
	return out, nil
}

// GotoPreset implements ptz.Camera.
func (c *Client) GotoPreset(ctx context.Context, token string) error {
	if err := ptz.ValidPresetToken(token); err != nil {
		return &Error{c.CameraID, "GotoPreset", err}
	}
	d, err := c.discover(ctx)
	if err != nil {
		return err
	}
	body := soap.El("tptz:GotoPreset", soap.Text("tptz:ProfileToken", d.profile), soap.Text("tptz:PresetToken", token))
	_, err = c.ptzCall(ctx, "GotoPreset", d.ptzPath, body)
	return err
}

// GotoHome implements ptz.Camera.
func (c *Client) GotoHome(ctx context.Context) error {
	d, err := c.discover(ctx)
	if err != nil {
		return err
	}
	_, err = c.ptzCall(ctx, "GotoHomePosition", d.ptzPath,
		soap.El("tptz:GotoHomePosition", soap.Text("tptz:ProfileToken", d.profile)))
	return err
}

// Status implements ptz.Camera: position (when reported, and finite) and
// whether any axis is moving.
func (c *Client) Status(ctx context.Context) (ptz.CameraStatus, error) {
	var st ptz.CameraStatus
	d, err := c.discover(ctx)
	if err != nil {
		return st, err
	}
	p, err := c.ptzCall(ctx, "GetStatus", d.ptzPath, soap.El("tptz:GetStatus", soap.Text("tptz:ProfileToken", d.profile)))
	if err != nil {
		return st, err
	}
	s := p.ChildLocal("PTZStatus")
	if pos := s.ChildLocal("Position"); pos != nil {
		var x ptz.Position
		ok := false
		if pt := pos.ChildLocal("PanTilt"); pt != nil {
			x.Pan, ok = attrFloat(pt, "x", -1, 1)
			var ok2 bool
			x.Tilt, ok2 = attrFloat(pt, "y", -1, 1)
			ok = ok && ok2
		}
		if z := pos.ChildLocal("Zoom"); z != nil {
			var okz bool
			x.Zoom, okz = attrFloat(z, "x", 0, 1)
			ok = ok || okz
		}
		if ok {
			st.Position = &x
		}
	}
	for _, axis := range []string{"PanTilt", "Zoom"} {
		if strings.EqualFold(s.TextOf("MoveStatus", axis), "MOVING") {
			st.Moving = true
		}
	}
	// some cameras answer <MoveStatus>MOVING</MoveStatus> without axes
	if m := s.ChildLocal("MoveStatus"); m != nil && strings.EqualFold(m.Text, "MOVING") {
		st.Moving = true
	}
	return st, nil
}

// attrFloat reads a finite number attribute and clamps it into lo..hi
// (cameras report positions in their own spaces; a hostile one reports
// anything).
func attrFloat(e *soap.Element, name string, lo, hi float64) (float64, bool) {
	v, ok := e.Attr(name)
	if !ok {
		return 0, false
	}
	f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, false
	}
	return math.Max(lo, math.Min(hi, f)), true
}

func num(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

// xsDuration formats d as an xs:duration in seconds ("PT1.5S").
func xsDuration(d time.Duration) string {
	return fmt.Sprintf("PT%sS", strconv.FormatFloat(d.Round(time.Millisecond).Seconds(), 'f', -1, 64))
}

// ptzCall is call for PTZ operations: when the camera no longer knows the
// profile (it was reconfigured or reset) or the service path, what
// discovery learnt is forgotten, so the next command discovers again.
func (c *Client) ptzCall(ctx context.Context, op, path string, body soap.Node) (*soap.Element, error) {
	p, err := c.call(ctx, op, path, body, true)
	var f *soap.Fault
	if err != nil && (errors.As(err, &f) && (f.Has("", "NoProfile") || f.Has("", "NoEntity")) || strings.HasSuffix(err.Error(), "HTTP 404")) {
		c.mu.Lock()
		c.disc = nil
		c.mu.Unlock()
	}
	return p, err
}
