package onvif

import (
	"context"
	"strconv"

	"cordon/internal/soap"
)

// NetworkInterface is the IPv4 part of one of GetNetworkInterfaces'
// interfaces: what hardening needs to tell the camera's subnet.
type NetworkInterface struct {
	Token       string
	Enabled     bool
	IPv4Enabled bool
	DHCP        bool
	// IPv4 are the configured addresses with prefix length ("10.20.0.12/24"):
	// Manual ones, or the one DHCP gave (FromDHCP) when DHCP is on.
	IPv4 []string
}

// GetNetworkInterfaces reads the camera's network interfaces (added for
// camnet/harden's default-gateway decision).
func (c *Client) GetNetworkInterfaces(ctx context.Context) ([]NetworkInterface, error) {
	p, err := c.call(ctx, "GetNetworkInterfaces", c.devPath, soap.El("tds:GetNetworkInterfaces"), true)
	if err != nil {
		return nil, err
	}
	var out []NetworkInterface
	for _, e := range p.ChildrenLocal("NetworkInterfaces") {
		if len(out) == maxListItems {
			break
		}
		tok, _ := e.Attr("token")
		ni := NetworkInterface{Token: soap.Clip(tok, 64), Enabled: parseBool(e.TextOf("Enabled"))}
		if v4 := e.ChildLocal("IPv4"); v4 != nil {
			ni.IPv4Enabled = parseBool(v4.TextOf("Enabled"))
			cfg := v4.ChildLocal("Config")
			ni.DHCP = parseBool(cfg.TextOf("DHCP"))
			addrs := cfg.ChildrenLocal("Manual")
			if ni.DHCP {
				addrs = cfg.ChildrenLocal("FromDHCP")
			}
			for _, a := range addrs {
				n, err := strconv.Atoi(a.TextOf("PrefixLength"))
				if err != nil || n < 0 || n > 32 || len(ni.IPv4) == maxListItems {
					continue
				}
				ni.IPv4 = append(ni.IPv4, soap.Clip(a.TextOf("Address"), 64)+"/"+strconv.Itoa(n))
			}
		}
		out = append(out, ni)
	}
	return out, nil
}
