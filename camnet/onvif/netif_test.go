package onvif

import (
	"context"
	"net"
	"net/url"
	"slices"
	"testing"

	"cordon/democam"
)

func TestGetNetworkInterfaces(t *testing.T) {
	cam := startFixture(t, "127.0.0.1", "hikvision")
	c := newClient(t, "http://"+cam.addr+"/onvif/device_service")
	ifs, err := c.GetNetworkInterfaces(context.Background())
	if err != nil || len(ifs) != 1 {
		t.Fatalf("%+v %v", ifs, err)
	}
	if ni := ifs[0]; ni.Token != "eth0" || !ni.Enabled || !ni.IPv4Enabled || ni.DHCP || !slices.Equal(ni.IPv4, []string{"192.168.1.64/24"}) {
		t.Fatalf("%+v", ni)
	}
}

func TestGetNetworkInterfacesAgainstDemocam(t *testing.T) {
	cam := startDome(t, democam.ONVIFQuirks{})
	c := newClient(t, cam.ONVIFURL())
	ifs, err := c.GetNetworkInterfaces(context.Background())
	u, _ := url.Parse(cam.ONVIFURL())
	host, _, _ := net.SplitHostPort(u.Host)
	if err != nil || len(ifs) != 1 || !slices.Equal(ifs[0].IPv4, []string{host + "/8"}) {
		t.Fatalf("%+v %v", ifs, err)
	}
}
