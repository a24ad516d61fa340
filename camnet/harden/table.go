package harden

import (
	"errors"
	"fmt"
	"io"
	"text/tabwriter"

	"cordon/config"
)

// PrintTable writes one line per camera and setting (camera, setting,
// want, have, status), then one line per detail (why a setting is
// unknown, failed or pending, or why a camera could not be checked).
// Camera-provided values are shown sanitized and shortened.
func PrintTable(w io.Writer, results []CameraResult) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CAMERA\tSETTING\tWANT\tHAVE\tSTATUS")
	var notes []string
	for _, r := range results {
		if r.Error != "" {
			fmt.Fprintf(tw, "%s\t-\t-\t-\terror\n", r.Camera)
			notes = append(notes, r.Error)
		}
		for _, s := range r.Settings {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.Camera, s.Name, clean(s.Want, 48), clean(s.Have, 48), s.Status)
			if s.Detail != "" {
				notes = append(notes, s.Detail)
			}
		}
		if r.Rebooted {
			notes = append(notes, "camera "+r.Camera+": rebooted by cordon (--reboot)")
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, n := range notes {
		if _, err := fmt.Fprintln(w, clean(n, 400)); err != nil {
			return err
		}
	}
	return nil
}

// errAdminOtherHost: admin_url names another host than url and the
// operator did not allow it.
var errAdminOtherHost = errors.New("admin_url names another host than url: the camera's credentials are not sent there " +
	"(set admin_other_host: true if that host really is the camera's management interface)")

// TargetsFrom returns the hardening targets of a validated configuration,
// in config order; only is a camera id ("" = every camera). Credentials
// are the camera's username and password (password_file read by Validate).
func TargetsFrom(cfg *config.Config, only string) ([]Target, error) {
	var out []Target
	for i := range cfg.Cameras {
		cam := &cfg.Cameras[i]
		if only != "" && cam.ID != only {
			continue
		}
		base, err := cam.AdminBase()
		if err != nil {
			return nil, err
		}
		user, pass := cam.Username, ""
		if user != "" {
			if pass, err = cam.Secret(); err != nil {
				return nil, fmt.Errorf("camera %s: password_file cannot be read", cam.ID)
			}
		} else if u, err := cam.PullURL(); err == nil && u.User != nil {
			user = u.User.Username()
			pass, _ = u.User.Password()
		}
		t := Target{Camera: cam.ID, Base: base, Username: user, Password: pass, Vendor: cam.Vendor}
		if t.CertSHA256, err = cam.AdminCertPin(); err != nil {
			return nil, fmt.Errorf("camera %s: admin_cert_sha256 %v", cam.ID, err)
		}
		if t.RootCAs, err = cam.AdminRootCAs(); err != nil {
			return nil, fmt.Errorf("camera %s: admin_ca_file %v", cam.ID, err)
		}
		if cam.AdminHostRefused() {
			t.Refused = errAdminOtherHost
		}
		out = append(out, t)
	}
	if only != "" && len(out) == 0 {
		return nil, fmt.Errorf("no camera %q in the configuration", clean(only, 64))
	}
	return out, nil
}
