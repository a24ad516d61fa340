package onvif

import (
	"context"
	"fmt"
	"net"
	"strconv"

	"cordon/internal/soap"
)

// maxListItems bounds every list read from a device answer.
const maxListItems = 16

// maxText bounds every string read from a device answer.
const maxText = 256

// DeviceInfo is GetDeviceInformation's answer.
type DeviceInfo struct {
	Manufacturer, Model, FirmwareVersion, SerialNumber, HardwareID string
}

// GetDeviceInformation asks the device service.
func (c *Client) GetDeviceInformation(ctx context.Context) (DeviceInfo, error) {
	p, err := c.call(ctx, "GetDeviceInformation", c.devPath, soap.El("tds:GetDeviceInformation"), true)
	if err != nil {
		return DeviceInfo{}, err
	}
	t := func(n string) string { return soap.Clip(p.TextOf(n), maxText) }
	return DeviceInfo{t("Manufacturer"), t("Model"), t("FirmwareVersion"), t("SerialNumber"), t("HardwareId")}, nil
}

// NetworkHost is an ONVIF NetworkHost: Type "IPv4", "IPv6" or "DNS" and
// the address or name.
type NetworkHost struct {
	Type, Value string
}

// Host returns a NetworkHost for an IP address or a DNS name.
func Host(v string) NetworkHost {
	ip := net.ParseIP(v)
	switch {
	case ip == nil:
		return NetworkHost{"DNS", v}
	case ip.To4() != nil:
		return NetworkHost{"IPv4", v}
	}
	return NetworkHost{"IPv6", v}
}

func (h NetworkHost) node(name string) soap.Node {
	field := map[string]string{"IPv4": "tt:IPv4Address", "IPv6": "tt:IPv6Address", "DNS": "tt:DNSname"}[h.Type]
	return soap.El(name, soap.Text("tt:Type", h.Type), soap.Text(field, h.Value))
}

func readHost(e *soap.Element) NetworkHost {
	h := NetworkHost{Type: soap.Clip(e.TextOf("Type"), 8)}
	for _, f := range []string{"IPv4Address", "IPv6Address", "DNSname"} {
		if v := e.TextOf(f); v != "" {
			h.Value = soap.Clip(v, maxText)
		}
	}
	return h
}

func readHosts(parent *soap.Element, local string) []NetworkHost {
	var out []NetworkHost
	for _, e := range parent.ChildrenLocal(local) {
		if len(out) == maxListItems {
			break
		}
		out = append(out, readHost(e))
	}
	return out
}

// NTPInfo is GetNTP's answer.
type NTPInfo struct {
	FromDHCP bool
	Manual   []NetworkHost
	// FromDHCPServers are the servers DHCP gave (read only).
	FromDHCPServers []NetworkHost
}

// GetNTP reads the camera's NTP servers.
func (c *Client) GetNTP(ctx context.Context) (NTPInfo, error) {
	p, err := c.call(ctx, "GetNTP", c.devPath, soap.El("tds:GetNTP"), true)
	if err != nil {
		return NTPInfo{}, err
	}
	info := p.ChildLocal("NTPInformation")
	return NTPInfo{
		FromDHCP:        parseBool(info.TextOf("FromDHCP")),
		Manual:          readHosts(info, "NTPManual"),
		FromDHCPServers: readHosts(info, "NTPFromDHCP"),
	}, nil
}

// SetNTP sets the camera's NTP servers.
func (c *Client) SetNTP(ctx context.Context, fromDHCP bool, manual []NetworkHost) error {
	body := soap.El("tds:SetNTP", soap.Text("tds:FromDHCP", strconv.FormatBool(fromDHCP)))
	for _, h := range manual {
		body = body.Add(h.node("tds:NTPManual"))
	}
	_, err := c.call(ctx, "SetNTP", c.devPath, body, true)
	return err
}

// DNSInfo is GetDNS's answer. Manual and FromDHCPServers are IP addresses.
type DNSInfo struct {
	FromDHCP        bool
	SearchDomain    []string
	Manual          []string
	FromDHCPServers []string
}

// GetDNS reads the camera's DNS servers.
func (c *Client) GetDNS(ctx context.Context) (DNSInfo, error) {
	p, err := c.call(ctx, "GetDNS", c.devPath, soap.El("tds:GetDNS"), true)
	if err != nil {
		return DNSInfo{}, err
	}
	info := p.ChildLocal("DNSInformation")
	out := DNSInfo{FromDHCP: parseBool(info.TextOf("FromDHCP"))}
	for _, e := range info.ChildrenLocal("SearchDomain") {
		if len(out.SearchDomain) < maxListItems {
			out.SearchDomain = append(out.SearchDomain, soap.Clip(e.Text, maxText))
		}
	}
	for _, h := range readHosts(info, "DNSManual") {
		out.Manual = append(out.Manual, h.Value)
	}
	for _, h := range readHosts(info, "DNSFromDHCP") {
		out.FromDHCPServers = append(out.FromDHCPServers, h.Value)
	}
	return out, nil
}

// SetDNS sets the camera's DNS servers (IP addresses) and search domains.
func (c *Client) SetDNS(ctx context.Context, fromDHCP bool, searchDomain, servers []string) error {
	body := soap.El("tds:SetDNS", soap.Text("tds:FromDHCP", strconv.FormatBool(fromDHCP)))
	for _, d := range searchDomain {
		body = body.Add(soap.Text("tds:SearchDomain", d))
	}
	for _, s := range servers {
		h := Host(s)
		if h.Type == "DNS" {
			return &Error{c.CameraID, "SetDNS", fmt.Errorf("DNS server %q is not an IP address", soap.Clip(s, 64))}
		}
		body = body.Add(soap.El("tds:DNSManual", soap.Text("tt:Type", h.Type), soap.Text("tt:"+h.Type+"Address", h.Value)))
	}
	_, err := c.call(ctx, "SetDNS", c.devPath, body, true)
	return err
}

// Gateway is the camera's default gateway.
type Gateway struct {
	IPv4, IPv6 []string
}

// GetNetworkDefaultGateway reads the default gateway.
func (c *Client) GetNetworkDefaultGateway(ctx context.Context) (Gateway, error) {
	p, err := c.call(ctx, "GetNetworkDefaultGateway", c.devPath, soap.El("tds:GetNetworkDefaultGateway"), true)
	if err != nil {
		return Gateway{}, err
	}
	gw := p.ChildLocal("NetworkGateway")
	var out Gateway
	for _, e := range gw.ChildrenLocal("IPv4Address") {
		if len(out.IPv4) < maxListItems {
			out.IPv4 = append(out.IPv4, soap.Clip(e.Text, 64))
		}
	}
	for _, e := range gw.ChildrenLocal("IPv6Address") {
		if len(out.IPv6) < maxListItems {
			out.IPv6 = append(out.IPv6, soap.Clip(e.Text, 64))
		}
	}
	return out, nil
}

// SetNetworkDefaultGateway sets it (empty lists clear it).
func (c *Client) SetNetworkDefaultGateway(ctx context.Context, gw Gateway) error {
	body := soap.El("tds:SetNetworkDefaultGateway")
	for _, a := range gw.IPv4 {
		body = body.Add(soap.Text("tds:IPv4Address", a))
	}
	for _, a := range gw.IPv6 {
		body = body.Add(soap.Text("tds:IPv6Address", a))
	}
	_, err := c.call(ctx, "SetNetworkDefaultGateway", c.devPath, body, true)
	return err
}

// NetworkProtocol is one of the camera's network services (HTTP, HTTPS,
// RTSP).
type NetworkProtocol struct {
	Name    string
	Enabled bool
	Ports   []int
}

// GetNetworkProtocols reads them.
func (c *Client) GetNetworkProtocols(ctx context.Context) ([]NetworkProtocol, error) {
	p, err := c.call(ctx, "GetNetworkProtocols", c.devPath, soap.El("tds:GetNetworkProtocols"), true)
	if err != nil {
		return nil, err
	}
	var out []NetworkProtocol
	for _, e := range p.ChildrenLocal("NetworkProtocols") {
		if len(out) == maxListItems {
			break
		}
		np := NetworkProtocol{Name: soap.Clip(e.TextOf("Name"), 16), Enabled: parseBool(e.TextOf("Enabled"))}
		for _, pe := range e.ChildrenLocal("Port") {
			if n, err := strconv.Atoi(pe.Text); err == nil && n > 0 && n < 65536 && len(np.Ports) < maxListItems {
				np.Ports = append(np.Ports, n)
			}
		}
		out = append(out, np)
	}
	return out, nil
}

// SetNetworkProtocols sets them.
func (c *Client) SetNetworkProtocols(ctx context.Context, protos []NetworkProtocol) error {
	body := soap.El("tds:SetNetworkProtocols")
	for _, np := range protos {
		n := soap.El("tds:NetworkProtocols", soap.Text("tt:Name", np.Name), soap.Text("tt:Enabled", strconv.FormatBool(np.Enabled)))
		for _, port := range np.Ports {
			n = n.Add(soap.Text("tt:Port", strconv.Itoa(port)))
		}
		body = body.Add(n)
	}
	_, err := c.call(ctx, "SetNetworkProtocols", c.devPath, body, true)
	return err
}

// GetDiscoveryMode reports whether the camera answers WS-Discovery probes
// ("Discoverable") or not ("NonDiscoverable").
func (c *Client) GetDiscoveryMode(ctx context.Context) (discoverable bool, err error) {
	p, err := c.call(ctx, "GetDiscoveryMode", c.devPath, soap.El("tds:GetDiscoveryMode"), true)
	if err != nil {
		return false, err
	}
	switch m := p.TextOf("DiscoveryMode"); m {
	case "Discoverable":
		return true, nil
	case "NonDiscoverable":
		return false, nil
	default:
		return false, &Error{c.CameraID, "GetDiscoveryMode", fmt.Errorf("unknown discovery mode %q", soap.Clip(m, 32))}
	}
}

// SetDiscoveryMode turns WS-Discovery answers on or off.
func (c *Client) SetDiscoveryMode(ctx context.Context, discoverable bool) error {
	mode := "NonDiscoverable"
	if discoverable {
		mode = "Discoverable"
	}
	_, err := c.call(ctx, "SetDiscoveryMode", c.devPath, soap.El("tds:SetDiscoveryMode", soap.Text("tds:DiscoveryMode", mode)), true)
	return err
}
