package api

import (
	"cordon/auth"
	"cordon/camera"
)

// streamFacts fills the camera list's rights, sub stream, B-frames and PTZ
// fields.
func (s *Server) streamFacts(cj *cameraJSON, u *camera.Unit, p *auth.Principal) {
	c := u.Current()
	if cj.Rights == nil {
		cj.Rights = p.Rights(c.ID)
	}
	cj.SubStream = u.Stream(camera.SubStream) != nil
	if sub, ok := u.State().Streams[camera.SubStream]; ok {
		cj.Viewers += sub.Viewers // a camera's viewers, whichever stream they watch
	}
	if m := u.Stream(""); m != nil {
		cj.BFrames = m.Info().BFrames
	}
	cj.PTZ = c.ONVIF != ""
}
