package democam

import (
	"net"
	"strconv"

	"cordon/internal/soap"
)

// networkInterfaces answers GetNetworkInterfaces: one wired interface,
// statically addressed at the camera's own listen address (prefix /8 on
// loopback, as 127.0.0.0/8 is one network; /24 otherwise). Hardening reads
// it to tell whether cordon is on the camera's subnet.
func (s *onvifServer) networkInterfaces() soap.Node {
	host, _, _ := net.SplitHostPort(s.cam.httpAddr)
	prefix := 24
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		prefix = 8
	}
	return soap.El("tds:GetNetworkInterfacesResponse", soap.El("tds:NetworkInterfaces",
		soap.Text("tt:Enabled", "true"),
		soap.El("tt:Info", soap.Text("tt:Name", "eth0"), soap.Text("tt:HwAddress", "02:00:00:00:00:01"), soap.Text("tt:MTU", "1500")),
		soap.El("tt:IPv4", soap.Text("tt:Enabled", "true"), soap.El("tt:Config",
			soap.El("tt:Manual", soap.Text("tt:Address", host), soap.Text("tt:PrefixLength", strconv.Itoa(prefix))),
			soap.Text("tt:DHCP", "false")))).With("token", "eth0"))
}
