package gateway

import (
	"context"
	"net"
	"net/netip"
	"time"

	"cordon/config"
	"cordon/internal/icepolicy"
)

// The WHEP door's remote-candidate policy (internal/icepolicy): viewer
// networks from the config; never the camera network (camera hosts, the
// camera-side services and the subnets that hold them) nor the gateway's
// own addresses unless a viewer network names them. Camera host names are
// resolved in the background; the policy is replaced when they are, and
// on every reload.

// setICEPolicy applies cfg's policy at once (camera names not yet
// resolved) and again once they are.
func (g *Gateway) setICEPolicy(cfg *config.Config) {
	if g.whep == nil {
		return
	}
	gen := g.iceGen.Add(1)
	g.whep.SetICEPolicy(g.icePolicy(cfg, nil))
	var names []string
	for i := range cfg.Cameras {
		if h := cfg.Cameras[i].Host(); h != "" {
			if _, err := netip.ParseAddr(h); err != nil {
				names = append(names, h)
			}
		}
	}
	if len(names) == 0 {
		return
	}
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		ctx, cancel := context.WithTimeout(g.ctx, 5*time.Second)
		defer cancel()
		var addrs []netip.Addr
		for _, n := range names {
			ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", n)
			if err != nil {
				g.Logger.Warn("cannot resolve a camera host for the WHEP candidate policy; its address is not excluded by name", "host", n, "err", err)
				continue
			}
			addrs = append(addrs, ips...)
		}
		if g.iceGen.Load() == gen && g.ctx.Err() == nil {
			g.whep.SetICEPolicy(g.icePolicy(cfg, addrs))
		}
	}()
}

func (g *Gateway) icePolicy(cfg *config.Config, resolved []netip.Addr) *icepolicy.Filter {
	ifs, err := icepolicy.InterfacePrefixes()
	if err != nil {
		g.Logger.Warn("cannot list interface addresses for the WHEP candidate policy", "err", err)
	}
	cams := append(cfg.CameraNetworkAddrs(), resolved...)
	return &icepolicy.Filter{
		Viewers:   cfg.WebRTC.ViewerPrefixes(),
		Cameras:   icepolicy.CameraNetworks(cams, ifs),
		Own:       icepolicy.OwnAddresses(ifs),
		MaxRemote: cfg.WebRTC.MaxRemoteCandidates,
	}
}
