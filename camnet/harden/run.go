package harden

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"time"
)

// Run checks one camera's outbound settings against w and, with o.Apply,
// sets what is not as wanted and reads it back; with o.Reboot it reboots
// the camera when a change needs it and reads again. It never changes
// credentials and never reboots without o.Reboot. Errors are reported in
// the result (camera-level Error, or a setting's Status and Detail), each
// naming the camera and never holding a secret.
func Run(ctx context.Context, t Target, w Wanted, o Options) CameraResult {
	res := CameraResult{Camera: t.Camera, Vendor: t.Vendor, CheckedAt: o.now().UTC(), Settings: []SettingResult{}}
	if t.Refused != nil {
		res.Error = (&settingError{camera: t.Camera, err: t.Refused}).Error()
		return res
	}
	cctx, cancel := context.WithTimeout(ctx, orDefault(o.CameraTimeout, 2*time.Minute))
	defer cancel()
	c := &Client{Camera: t.Camera, Base: t.Base, Username: t.Username, Password: t.Password,
		RootCAs: t.RootCAs, CertSHA256: t.CertSHA256, Timeout: o.RequestTimeout, MaxBody: o.MaxBody}
	defer c.Close()
	if ou := t.ONVIF; ou != nil && (ou.Scheme == "http" || ou.Scheme == "https") && ou.Host != "" {
		if t.Base != nil && ou.Scheme == t.Base.Scheme && ou.Host == t.Base.Host {
			c.DevicePath = ou.Path
		} else {
			c.ONVIF = &Client{Camera: t.Camera, Base: &url.URL{Scheme: ou.Scheme, Host: ou.Host}, DevicePath: ou.Path,
				Username: t.Username, Password: t.Password, RootCAs: t.RootCAs, CertSHA256: t.CertSHA256,
				Timeout: o.RequestTimeout, MaxBody: o.MaxBody}
			defer c.ONVIF.Close()
		}
	}
	v, err := Resolve(cctx, c, t.Vendor)
	if err != nil {
		res.Error = (&settingError{camera: t.Camera, err: err}).Error()
		return res
	}
	defer func() {
		closeCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		v.Close(closeCtx)
	}()
	res.Vendor = v.Name()
	settings := v.Settings(w)
	var stop error // a fatal error: the rest are not tried
	for _, s := range settings {
		if stop != nil {
			res.Settings = append(res.Settings, SettingResult{Name: s.Name, Want: s.Want, Have: "?",
				Status: StatusUnknown, Detail: describe(t.Camera, s.Name, fmt.Errorf("not checked: %w", stop))})
			continue
		}
		r, err := checkOne(cctx, t.Camera, s, o.Apply)
		res.Settings = append(res.Settings, r)
		if fatal(err) {
			stop = err
		}
		if errors.Is(err, ErrUnauthorized) {
			res.AuthRefused = true
		}
	}
	if o.Apply && o.Reboot && stop == nil && pendingReboot(&res) {
		rebootAndReread(ctx, t.Camera, v, settings, o, &res)
	}
	return res
}

// checkOne reads one setting and, with apply, sets it and reads it back.
func checkOne(ctx context.Context, camera string, s Setting, apply bool) (SettingResult, error) {
	r := SettingResult{Name: s.Name, Want: s.Want}
	rd, err := s.Read(ctx)
	if err != nil {
		if errors.Is(err, ErrAbsent) && s.Optional {
			r.Have, r.OK, r.Status = "absent", true, StatusAbsent
			return r, nil
		}
		r.Have, r.Status, r.Detail = "?", StatusUnknown, describe(camera, s.Name, err)
		return r, err
	}
	r.Have, r.OK = rd.Have, rd.OK
	if rd.Want != "" {
		r.Want = rd.Want
	}
	switch {
	case rd.OK:
		r.Status = StatusOK
		return r, nil
	case !apply || rd.Keep || s.Apply == nil:
		r.Status = StatusDrift
		return r, nil
	}
	out, err := s.Apply(ctx)
	if err != nil {
		r.Status, r.Detail = StatusFailed, describe(camera, s.Name, err)
		return r, err
	}
	back, err := s.Read(ctx)
	if err != nil {
		r.Status, r.Detail = StatusUnknown, describe(camera, s.Name, fmt.Errorf("reading back: %w", err))
		return r, err
	}
	r.Have, r.OK = back.Have, back.OK
	switch {
	case out.NeedsReboot:
		r.OK, r.Status = false, StatusNeedsReboot
		r.Detail = describe(camera, s.Name, errors.New("the camera applies this after a reboot (run with --reboot)"))
	case back.OK:
		r.Status = StatusSet
	default:
		r.Status = StatusNotApplied
		r.Detail = describe(camera, s.Name, errors.New("the camera accepted the change but reads back the old value (it may need --reboot)"))
	}
	return r, nil
}

func describe(camera, setting string, err error) string {
	return (&settingError{camera: camera, setting: setting, err: err}).Error()
}

func pendingReboot(res *CameraResult) bool {
	for _, s := range res.Settings {
		if s.Status == StatusNeedsReboot || s.Status == StatusNotApplied {
			return true
		}
	}
	return false
}

// rebootAndReread reboots the camera, waits for it to go away and come
// back (bounded), and reads the pending settings again.
func rebootAndReread(ctx context.Context, camera string, v Vendor, settings []Setting, o Options, res *CameraResult) {
	if err := v.Reboot(ctx); err != nil {
		res.Error = describe(camera, "reboot", err)
		return
	}
	if err := waitProbe(ctx, v, false, orDefault(o.RebootDown, 2*time.Minute), orDefault(o.PollEvery, 500*time.Millisecond)); err != nil {
		res.Error = describe(camera, "reboot", errors.New("the camera did not go down to restart"))
		return
	}
	if err := waitProbe(ctx, v, true, orDefault(o.RebootUp, 5*time.Minute), orDefault(o.PollEvery, 500*time.Millisecond)); err != nil {
		res.Error = describe(camera, "reboot", errors.New("the camera did not answer again after its restart"))
		return
	}
	res.Rebooted = true
	cctx, cancel := context.WithTimeout(ctx, orDefault(o.CameraTimeout, 2*time.Minute))
	defer cancel()
	for i := range res.Settings {
		r := &res.Settings[i]
		if r.Status != StatusNeedsReboot && r.Status != StatusNotApplied {
			continue
		}
		back, err := settings[i].Read(cctx)
		if err != nil {
			r.Status, r.OK, r.Detail = StatusUnknown, false, describe(camera, r.Name, fmt.Errorf("reading after the reboot: %w", err))
			continue
		}
		r.Have, r.OK = back.Have, back.OK
		if back.OK {
			r.Status, r.Detail = StatusSet, ""
		} else {
			r.Status = StatusNotApplied
			r.Detail = describe(camera, r.Name, errors.New("still not as wanted after the reboot"))
		}
	}
}

// waitProbe polls until the camera answers (up) or stops answering (!up),
// bounded by limit.
func waitProbe(ctx context.Context, v Vendor, up bool, limit, every time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		pctx, pcancel := context.WithTimeout(ctx, every+time.Second)
		err := v.Probe(pctx)
		pcancel()
		if (err == nil) == up {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}
