package onvifserve

import (
	"net"
	"net/url"
	"strconv"

	"cordon/internal/soap"
)

// operations is the table of everything the face answers, by namespace
// and local name; anything else is ter:ActionNotSupported.
func (s *Server) operations() map[opKey]op {
	dev := func(name string, fn func(*call) ([]soap.Node, *soap.Fault)) (opKey, op) {
		return opKey{soap.NsDevice, name}, op{fn: fn}
	}
	m := map[opKey]op{
		{soap.NsDevice, "GetSystemDateAndTime"}: {open: true, fn: (*call).systemDateAndTime},
	}
	for _, e := range []struct {
		name string
		fn   func(*call) ([]soap.Node, *soap.Fault)
	}{
		{"GetDeviceInformation", (*call).deviceInformation},
		{"GetCapabilities", (*call).capabilities},
		{"GetServices", (*call).services},
		{"GetServiceCapabilities", (*call).deviceServiceCapabilities},
		{"GetScopes", (*call).scopes},
	} {
		k, o := dev(e.name, e.fn)
		m[k] = o
	}
	for name, fn := range mediaOps() {
		m[opKey{soap.NsMedia, name}] = op{fn: fn}
	}
	for name, fn := range ptzOps() {
		m[opKey{soap.NsPTZ, name}] = op{fn: fn}
	}
	return m
}

func one(n soap.Node) ([]soap.Node, *soap.Fault) { return []soap.Node{n}, nil }

func itoa(v int) string { return strconv.Itoa(v) }

func (c *call) systemDateAndTime() ([]soap.Node, *soap.Fault) {
	t := c.s.Now().UTC()
	it := func(name string, v int) soap.Node { return soap.Text(name, itoa(v)) }
	return one(soap.El("tds:GetSystemDateAndTimeResponse", soap.El("tds:SystemDateAndTime",
		soap.Text("tt:DateTimeType", "NTP"), soap.Text("tt:DaylightSavings", "false"),
		soap.El("tt:TimeZone", soap.Text("tt:TZ", "UTC0")),
		soap.El("tt:UTCDateTime",
			soap.El("tt:Time", it("tt:Hour", t.Hour()), it("tt:Minute", t.Minute()), it("tt:Second", t.Second())),
			soap.El("tt:Date", it("tt:Year", t.Year()), it("tt:Month", int(t.Month())), it("tt:Day", t.Day()))))))
}

// deviceInformation is cordon's own identity: a VMS never learns which
// camera vendors sit behind it.
func (c *call) deviceInformation() ([]soap.Node, *soap.Fault) {
	return one(soap.El("tds:GetDeviceInformationResponse",
		soap.Text("tds:Manufacturer", Manufacturer), soap.Text("tds:Model", Model),
		soap.Text("tds:FirmwareVersion", c.s.Version), soap.Text("tds:SerialNumber", c.s.SerialNumber),
		soap.Text("tds:HardwareId", HardwareID)))
}

// xaddr is a service address on the host and port the client used.
func (c *call) xaddr(path string) string {
	scheme := "http"
	if c.r.TLS != nil {
		scheme = "https"
	}
	host := c.host
	if c.port != "" {
		host = net.JoinHostPort(c.host, c.port)
	} else if ip := net.ParseIP(c.host); ip != nil && ip.To4() == nil {
		host = "[" + c.host + "]"
	}
	return (&url.URL{Scheme: scheme, Host: host, Path: path}).String()
}

// capabilities answers GetCapabilities (Category All, Device, Media or
// PTZ; others are ter:NoSuchService).
func (c *call) capabilities() ([]soap.Node, *soap.Fault) {
	cats := map[string]bool{}
	for _, e := range c.req.ChildrenLocal("Category") {
		cats[e.Text] = true
	}
	all := len(cats) == 0 || cats["All"]
	for k := range cats {
		switch k {
		case "All", "Device", "Media", "PTZ":
		default:
			return nil, soap.NewFault(soap.CodeReceiver, "capability category not supported", "ActionNotSupported", "NoSuchService")
		}
	}
	caps := soap.El("tds:Capabilities")
	if all || cats["Device"] {
		caps = caps.Add(soap.El("tt:Device", soap.Text("tt:XAddr", c.xaddr(DevicePath)),
			soap.El("tt:Network", soap.Text("tt:IPFilter", "false"), soap.Text("tt:ZeroConfiguration", "false"),
				soap.Text("tt:IPVersion6", "false"), soap.Text("tt:DynDNS", "false")),
			soap.El("tt:System", soap.Text("tt:DiscoveryResolve", "false"), soap.Text("tt:DiscoveryBye", "false"),
				soap.Text("tt:RemoteDiscovery", "false"), soap.Text("tt:SystemBackup", "false"),
				soap.Text("tt:SystemLogging", "false"), soap.Text("tt:FirmwareUpgrade", "false"),
				soap.El("tt:SupportedVersions", soap.Text("tt:Major", "2"), soap.Text("tt:Minor", "60"))),
			soap.El("tt:IO", soap.Text("tt:InputConnectors", "0"), soap.Text("tt:RelayOutputs", "0")),
			soap.El("tt:Security", soap.Text("tt:TLS1.1", "false"), soap.Text("tt:TLS1.2", strconv.FormatBool(c.r.TLS != nil)),
				soap.Text("tt:OnboardKeyGeneration", "false"), soap.Text("tt:AccessPolicyConfig", "false"),
				soap.Text("tt:X.509Token", "false"), soap.Text("tt:SAMLToken", "false"),
				soap.Text("tt:KerberosToken", "false"), soap.Text("tt:RELToken", "false"))))
	}
	if all || cats["Media"] {
		caps = caps.Add(soap.El("tt:Media", soap.Text("tt:XAddr", c.xaddr(MediaPath)),
			soap.El("tt:StreamingCapabilities", soap.Text("tt:RTPMulticast", "false"),
				soap.Text("tt:RTP_TCP", "true"), soap.Text("tt:RTP_RTSP_TCP", "true"))))
	}
	if all || cats["PTZ"] {
		caps = caps.Add(soap.El("tt:PTZ", soap.Text("tt:XAddr", c.xaddr(PTZPath))))
	}
	return one(soap.El("tds:GetCapabilitiesResponse", caps))
}

// services answers GetServices: device, media (ver10) and PTZ (ver20),
// with each service's capabilities when asked.
func (c *call) services() ([]soap.Node, *soap.Fault) {
	withCaps := c.req.TextOf("IncludeCapability") == "true"
	res := soap.El("tds:GetServicesResponse")
	for _, sv := range []struct {
		ns, path string
		caps     func() soap.Node
	}{
		{soap.NsDevice, DevicePath, c.deviceCaps},
		{soap.NsMedia, MediaPath, mediaCaps},
		{soap.NsPTZ, PTZPath, ptzCaps},
	} {
		n := soap.El("tds:Service", soap.Text("tds:Namespace", sv.ns), soap.Text("tds:XAddr", c.xaddr(sv.path)))
		if withCaps {
			n = n.Add(soap.El("tds:Capabilities", sv.caps()))
		}
		n = n.Add(soap.El("tds:Version", soap.Text("tt:Major", "2"), soap.Text("tt:Minor", "60")))
		res = res.Add(n)
	}
	return one(res)
}

func (c *call) deviceServiceCapabilities() ([]soap.Node, *soap.Fault) {
	return one(soap.El("tds:GetServiceCapabilitiesResponse", c.deviceCaps()))
}

// deviceCaps is the device service's capabilities: UsernameToken and
// HTTP Digest sign-in, TLS when served over it, nothing configurable.
func (c *call) deviceCaps() soap.Node {
	tls := strconv.FormatBool(c.r.TLS != nil)
	return soap.El("tds:Capabilities",
		soap.Node{Name: "tds:Network"}.With("IPFilter", "false").With("ZeroConfiguration", "false").
			With("IPVersion6", "false").With("DynDNS", "false").With("NTP", "0"),
		soap.Node{Name: "tds:Security"}.With("TLS1.2", tls).With("UsernameToken", "true").
			With("HttpDigest", "true").With("OnboardKeyGeneration", "false").With("AccessPolicyConfig", "false"),
		soap.Node{Name: "tds:System"}.With("DiscoveryResolve", "false").With("DiscoveryBye", "false").
			With("RemoteDiscovery", "false").With("SystemBackup", "false").With("FirmwareUpgrade", "false"))
}

// scopes answers GetScopes: a fixed set naming cordon and Profile S.
func (c *call) scopes() ([]soap.Node, *soap.Fault) {
	res := soap.El("tds:GetScopesResponse")
	for _, sc := range c.s.scopeList() {
		res = res.Add(soap.El("tds:Scopes", soap.Text("tt:ScopeDef", "Fixed"), soap.Text("tt:ScopeItem", sc)))
	}
	return one(res)
}

func (s *Server) scopeList() []string {
	return []string{
		"onvif://www.onvif.org/type/NetworkVideoTransmitter",
		"onvif://www.onvif.org/type/video_encoder",
		"onvif://www.onvif.org/type/ptz",
		"onvif://www.onvif.org/Profile/Streaming",
		"onvif://www.onvif.org/name/" + url.PathEscape(s.DeviceName),
		"onvif://www.onvif.org/hardware/" + HardwareID,
	}
}
