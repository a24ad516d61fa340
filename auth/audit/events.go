package audit

// Event names (the CONTRACT's list; Append refuses anything else).
const (
	LoginOK       = "login_ok"
	LoginFailed   = "login_failed"
	Logout        = "logout"
	ViewStart     = "view_start"
	ViewEnd       = "view_end"
	Denied        = "denied"
	ConfigLoaded  = "config_loaded"
	CameraOnline  = "camera_online"
	CameraOffline = "camera_offline"
	EgressAttempt = "egress_attempt"
	// Names shared by the wave-1 branches (SEAMS item 3).
	Suppressed     = "suppressed"      // hostile-event aggregation: counts of what was not written
	PTZStart       = "ptz_start"       // a principal takes PTZ control
	PTZEnd         = "ptz_end"         // control ends (commands, duration)
	PTZTakeover    = "ptz_takeover"    // actor = the new holder; detail names the previous
	Playback       = "playback"        // a recording was played
	Export         = "export"          // an evidence export was made
	HardeningDrift = "hardening_drift" // a camera setting drifted from what hardening set
	CameraHardened = "camera_hardened" // hardening set and read back a camera's settings
	SessionKilled  = "session_killed"  // an administrator ended someone's session
)

func knownEvent(e string) bool {
	switch e {
	case LoginOK, LoginFailed, Logout, ViewStart, ViewEnd, Denied,
		ConfigLoaded, CameraOnline, CameraOffline, EgressAttempt,
		Suppressed, PTZStart, PTZEnd, PTZTakeover, Playback, Export,
		HardeningDrift, CameraHardened, SessionKilled:
		return true
	}
	return false
}

// hasSource reports whether lines of event e carry "source" (where the
// identity was proven: local, ldap, oidc).
func hasSource(e string) bool { return e == LoginOK || e == LoginFailed }
