package harden

import (
	"context"
	"errors"
)

// errNoONVIF is the answer for vendor "onvif" until the ONVIF adapter is
// built over camnet/onvif's SOAP client (SetNTP, SetDNS,
// SetNetworkDefaultGateway, SetDiscoveryMode, Get/SetNetworkProtocols as
// Settings of a Vendor). camnet/onvif is being written on another branch;
// this build has no ONVIF client, so it says so instead of guessing.
var errNoONVIF = errors.New("ONVIF hardening is not in this build yet (it needs the camnet/onvif client); use vendor hikvision or dahua, or harden this camera by hand")

func resolveONVIF(context.Context, *Client) (Vendor, error) { return nil, errNoONVIF }
