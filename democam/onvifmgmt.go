package democam

import (
	"slices"
	"strconv"
	"sync"

	"cordon/internal/soap"
)

// DeviceSettings are the PTZ camera's network settings that make a real
// camera reach out, as ONVIF's device service reads and sets them (the
// hardening work's "generic ONVIF" vendor tests against these).
type DeviceSettings struct {
	NTPFromDHCP bool
	// NTPServers: IP addresses or DNS names.
	NTPServers  []string
	DNSFromDHCP bool
	DNSSearch   []string
	DNSServers  []string
	Gateway     []string // IPv4 default gateway(s)
	Protocols   []DeviceProtocol
	// Discoverable: the camera answers WS-Discovery probes.
	Discoverable bool
}

// DeviceProtocol is one network service (HTTP, HTTPS, RTSP).
type DeviceProtocol struct {
	Name    string
	Enabled bool
	Ports   []int
}

// FactorySettings are what a PTZCamera starts with and returns to after
// FactoryReset: public NTP and DNS, a default route, and every protocol on.
func FactorySettings() DeviceSettings {
	return DeviceSettings{
		NTPServers:   []string{"pool.ntp.org", "time.windows.com"},
		DNSServers:   []string{"8.8.8.8", "114.114.114.114"},
		Gateway:      []string{"192.168.1.1"},
		Discoverable: true,
		Protocols: []DeviceProtocol{
			{"HTTP", true, []int{80}}, {"HTTPS", true, []int{443}}, {"RTSP", true, []int{554}},
		},
	}
}

func (s DeviceSettings) clone() DeviceSettings {
	out := s
	out.NTPServers = slices.Clone(s.NTPServers)
	out.DNSSearch = slices.Clone(s.DNSSearch)
	out.DNSServers = slices.Clone(s.DNSServers)
	out.Gateway = slices.Clone(s.Gateway)
	out.Protocols = make([]DeviceProtocol, len(s.Protocols))
	for i, p := range s.Protocols {
		out.Protocols[i] = DeviceProtocol{p.Name, p.Enabled, slices.Clone(p.Ports)}
	}
	return out
}

// deviceMgmt holds the settings and answers the device-management calls.
type deviceMgmt struct {
	mu sync.Mutex
	s  DeviceSettings
}

func hostNode(name, v string) soap.Node {
	switch {
	case isIPv4(v):
		return soap.El(name, soap.Text("tt:Type", "IPv4"), soap.Text("tt:IPv4Address", v))
	case isIP(v):
		return soap.El(name, soap.Text("tt:Type", "IPv6"), soap.Text("tt:IPv6Address", v))
	}
	return soap.El(name, soap.Text("tt:Type", "DNS"), soap.Text("tt:DNSname", v))
}

// hostValues reads NetworkHost / IPAddress lists of a Set request.
func hostValues(req *soap.Element, local string) []string {
	var out []string
	for _, e := range req.ChildrenLocal(local) {
		for _, f := range []string{"IPv4Address", "IPv6Address", "DNSname"} {
			if v := e.TextOf(f); v != "" {
				out = append(out, v)
			}
		}
	}
	return out
}

func (m *deviceMgmt) getNTP() soap.Node {
	m.mu.Lock()
	defer m.mu.Unlock()
	info := soap.El("tds:NTPInformation", soap.Text("tt:FromDHCP", strconv.FormatBool(m.s.NTPFromDHCP)))
	for _, v := range m.s.NTPServers {
		info = info.Add(hostNode("tt:NTPManual", v))
	}
	return soap.El("tds:GetNTPResponse", info)
}

func (m *deviceMgmt) setNTP(req *soap.Element) soap.Node {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.s.NTPFromDHCP = req.TextOf("FromDHCP") == "true"
	m.s.NTPServers = hostValues(req, "NTPManual")
	return soap.El("tds:SetNTPResponse")
}

func (m *deviceMgmt) getDNS() soap.Node {
	m.mu.Lock()
	defer m.mu.Unlock()
	info := soap.El("tds:DNSInformation", soap.Text("tt:FromDHCP", strconv.FormatBool(m.s.DNSFromDHCP)))
	for _, d := range m.s.DNSSearch {
		info = info.Add(soap.Text("tt:SearchDomain", d))
	}
	for _, v := range m.s.DNSServers {
		info = info.Add(hostNode("tt:DNSManual", v))
	}
	return soap.El("tds:GetDNSResponse", info)
}

func (m *deviceMgmt) setDNS(req *soap.Element) (soap.Node, *soap.Fault) {
	servers := hostValues(req, "DNSManual")
	for _, s := range servers {
		if !isIP(s) {
			return soap.Node{}, soap.InvalidArgVal("DNSManual must be an IP address", "InvalidIPv4Address")
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.s.DNSFromDHCP = req.TextOf("FromDHCP") == "true"
	m.s.DNSSearch = nil
	for _, e := range req.ChildrenLocal("SearchDomain") {
		m.s.DNSSearch = append(m.s.DNSSearch, e.Text)
	}
	m.s.DNSServers = servers
	return soap.El("tds:SetDNSResponse"), nil
}

func (m *deviceMgmt) getGateway() soap.Node {
	m.mu.Lock()
	defer m.mu.Unlock()
	gw := soap.El("tds:NetworkGateway")
	for _, a := range m.s.Gateway {
		gw = gw.Add(soap.Text("tt:IPv4Address", a))
	}
	return soap.El("tds:GetNetworkDefaultGatewayResponse", gw)
}

func (m *deviceMgmt) setGateway(req *soap.Element) (soap.Node, *soap.Fault) {
	var gw []string
	for _, e := range req.ChildrenLocal("IPv4Address") {
		if !isIPv4(e.Text) {
			return soap.Node{}, soap.InvalidArgVal("not an IPv4 address", "InvalidGatewayAddress")
		}
		gw = append(gw, e.Text)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.s.Gateway = gw
	return soap.El("tds:SetNetworkDefaultGatewayResponse"), nil
}

func (m *deviceMgmt) getProtocols() soap.Node {
	m.mu.Lock()
	defer m.mu.Unlock()
	res := soap.El("tds:GetNetworkProtocolsResponse")
	for _, p := range m.s.Protocols {
		n := soap.El("tds:NetworkProtocols", soap.Text("tt:Name", p.Name), soap.Text("tt:Enabled", strconv.FormatBool(p.Enabled)))
		for _, port := range p.Ports {
			n = n.Add(soap.Text("tt:Port", strconv.Itoa(port)))
		}
		res = res.Add(n)
	}
	return res
}

func (m *deviceMgmt) setProtocols(req *soap.Element) (soap.Node, *soap.Fault) {
	m.mu.Lock()
	defer m.mu.Unlock()
	next := m.s.clone()
	for _, e := range req.ChildrenLocal("NetworkProtocols") {
		name := e.TextOf("Name")
		i := slices.IndexFunc(next.Protocols, func(p DeviceProtocol) bool { return p.Name == name })
		if i < 0 {
			return soap.Node{}, soap.InvalidArgVal("unknown protocol", "ServiceNotSupported")
		}
		next.Protocols[i].Enabled = e.TextOf("Enabled") == "true"
		var ports []int
		for _, pe := range e.ChildrenLocal("Port") {
			n, err := strconv.Atoi(pe.Text)
			if err != nil || n <= 0 || n > 65535 {
				return soap.Node{}, soap.InvalidArgVal("bad port", "PortAlreadyInUse")
			}
			ports = append(ports, n)
		}
		if len(ports) > 0 {
			next.Protocols[i].Ports = ports
		}
	}
	m.s = next
	return soap.El("tds:SetNetworkProtocolsResponse"), nil
}

func (m *deviceMgmt) getDiscovery() soap.Node {
	m.mu.Lock()
	defer m.mu.Unlock()
	mode := map[bool]string{true: "Discoverable", false: "NonDiscoverable"}[m.s.Discoverable]
	return soap.El("tds:GetDiscoveryModeResponse", soap.Text("tds:DiscoveryMode", mode))
}

func (m *deviceMgmt) setDiscovery(req *soap.Element) (soap.Node, *soap.Fault) {
	var on bool
	switch req.TextOf("DiscoveryMode") {
	case "Discoverable":
		on = true
	case "NonDiscoverable":
	default:
		return soap.Node{}, soap.InvalidArgVal("unknown discovery mode", "")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.s.Discoverable = on
	return soap.El("tds:SetDiscoveryModeResponse"), nil
}
