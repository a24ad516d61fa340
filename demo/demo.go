// Package demo is `cordon demo`: the whole gateway on synthetic cameras
// (democam, each on its own loopback host, two with vendor quirks and one
// on demand, and an ONVIF PTZ dome with a sub stream), a demo user with a
// random password who may steer the dome, everything on
// 127.0.0.1, and cameras that "phone home" through the DNS sinkhole so the
// egress report has content. It has no other home: democam is the camera
// side only and the gateway must not know about demos.
package demo

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/miekg/dns"

	"cordon/auth"
	"cordon/config"
	"cordon/democam"
	"cordon/gateway"
	"cordon/relay/rtspserve"
)

// Options configures `cordon demo`. Zero values pick the defaults.
type Options struct {
	HTTPListen string // default 127.0.0.1:8080
	RTSPListen string // default 127.0.0.1:8554
	// RTSPUDPPort is the RTP port of RTSP over UDP (RTCP +1): default 8000,
	// or a free pair when RTSPListen's port is 0; <0 = TCP only.
	RTSPUDPPort   int
	WebRTCListen  string // UDP and ICE-TCP, default 127.0.0.1:8189
	MetricsListen string // default 127.0.0.1:9464
	StateDir      string // default: a new temporary directory, removed on Close
	Password      string // default: random, printed
	SelfSigned    bool
	Logger        *slog.Logger
	Stdout        io.Writer
}

// Demo is a running demo: synthetic cameras and the gateway.
type Demo struct {
	Gateway *gateway.Gateway
	Cameras []*democam.Camera
	// Dome is the PTZ camera "dome": steer it from the viewer's single
	// view; its picture follows.
	Dome     *democam.PTZCamera
	User     string
	Password string
	URL      string

	tmp    string
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// demoCameras are the built-in cameras: one clean, one with Hikvision-style
// vendor traces, one Dahua-style and on demand. Each sits on its own
// loopback host so the DNS sinkhole can tell them apart.
var demoCameras = []struct {
	id, name, host string
	quirks         democam.Quirks
	audio          bool
	onDemand       bool
	record         bool
	phoneHome      []string
}{
	{id: "lobby", name: "Lobby", host: "127.0.0.2", audio: true, record: true},
	{id: "gate-north", name: "Gate north (Hikvision-style)", host: "127.0.0.3", record: true,
		quirks:    democam.Quirks{HikvisionSDP: true, PrivateSEI: true, AUDAndFiller: true, HeaderExtensions: true},
		phoneHome: []string{"litedev.hik-connect.com.", "api.ezvizlife.com.", "0.pool.ntp.org."}},
	{id: "yard", name: "Yard (Dahua-style, on demand)", host: "127.0.0.4",
		quirks: democam.Quirks{DahuaTracks: true, MarkerOnParamSets: true}, onDemand: true,
		phoneHome: []string{"www.easy4ipcloud.com.", "p2p.easy4ip.com."}},
}

// rtspUDP returns the RTSP UDP pair for the demo: none when port < 0, port
// and port+1 on the RTSP host, 8000 by default, a free pair (port 0) when
// the RTSP port itself is chosen by the system.
func rtspUDP(rtspListen string, port int) (string, string) {
	if port < 0 {
		return "", ""
	}
	host, rtspPort, _ := net.SplitHostPort(rtspListen)
	if port == 0 && rtspPort == "0" {
		return net.JoinHostPort(host, "0"), net.JoinHostPort(host, "0")
	}
	if port == 0 {
		port = 8000
	}
	return net.JoinHostPort(host, strconv.Itoa(port)), net.JoinHostPort(host, strconv.Itoa(port+1))
}

func randomSecret(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// Start starts the synthetic cameras and the gateway.
func Start(opts Options) (_ *Demo, err error) {
	opts.defaults()
	d := &Demo{User: "demo", Password: opts.Password}
	if d.Password == "" {
		d.Password = randomSecret(12)
	}
	defer func() {
		if err != nil {
			d.Close()
		}
	}()
	if opts.StateDir == "" {
		d.tmp, err = os.MkdirTemp("", "cordon-demo-")
		if err != nil {
			return nil, err
		}
		opts.StateDir = d.tmp
	}
	cfg, err := d.config(opts)
	if err != nil {
		return nil, err
	}
	secrets, err := d.startCameras(cfg, opts.Logger)
	if err != nil {
		return nil, err
	}
	if errs := cfg.Validate(); len(errs) > 0 {
		return nil, fmt.Errorf("demo config: %v", errs)
	}
	red := config.NewRedactor(cfg)
	red.Update(cfg, append(secrets, d.Password)...)
	g := &gateway.Gateway{Config: cfg, Logger: opts.Logger, Redactor: red, Stdout: opts.Stdout, SelfSigned: opts.SelfSigned,
		ExtraSecrets: []string{d.Password}, NoHardening: true} // the demo cameras have no management API
	if err := g.Initialize(); err != nil {
		return nil, err
	}
	d.Gateway = g
	scheme := "http"
	if g.TLS() {
		scheme = "https"
	}
	d.URL = fmt.Sprintf("%s://%s/", scheme, g.HTTPAddr())

	ctx, cancel := context.WithCancel(context.Background())
	d.cancel = cancel
	d.wg.Add(1)
	go d.phoneHome(ctx, g.DNSAddr())
	return d, nil
}

func (o *Options) defaults() {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Stdout == nil {
		o.Stdout = io.Discard
	}
	def := func(v *string, d string) {
		if *v == "" {
			*v = d
		}
	}
	def(&o.HTTPListen, "127.0.0.1:8080")
	def(&o.RTSPListen, "127.0.0.1:8554")
	def(&o.WebRTCListen, "127.0.0.1:8189")
	def(&o.MetricsListen, "127.0.0.1:9464")
}

// config is the demo's configuration without cameras: everything on
// loopback, the demo user an admin with an RTSP Digest HA1 who may also
// play back and export the recordings (kept in state_dir/recordings).
func (d *Demo) config(opts Options) (*config.Config, error) {
	cfg := config.Default()
	cfg.HTTP.Listen = opts.HTTPListen
	cfg.RTSP.Listen = opts.RTSPListen
	cfg.RTSP.UDPRTPListen, cfg.RTSP.UDPRTCPListen = rtspUDP(opts.RTSPListen, opts.RTSPUDPPort)
	cfg.WebRTC.UDPListen = opts.WebRTCListen
	cfg.WebRTC.TCPListen = opts.WebRTCListen
	cfg.WebRTC.HostIPs = []string{"127.0.0.1"}
	// the viewer is a browser on this host: loopback is named explicitly
	// (the candidate policy refuses loopback and the gateway's own
	// addresses otherwise)
	cfg.WebRTC.ViewerNetworks = []string{"127.0.0.1/32"}
	// a demo on loopback needs few connections; small caps keep it within
	// any open-file limit
	cfg.Limits.HTTP = config.ConnLimit{PerAddress: 128, Total: 256}
	cfg.Limits.RTSP = config.ConnLimit{PerAddress: 64, Total: 128}
	cfg.Limits.ICETCP = config.ConnLimit{PerAddress: 64, Total: 128}
	cfg.Metrics.Listen = opts.MetricsListen
	cfg.CameraNetwork.DNSListen = "127.0.0.1:0"
	cfg.CameraNetwork.NTPListen = "127.0.0.1:0"
	cfg.StateDir = opts.StateDir
	cfg.Audit.Path = filepath.Join(opts.StateDir, "audit.log")
	hash, err := auth.HashSecret([]byte(d.Password))
	if err != nil {
		return nil, err
	}
	cfg.Recording.Path = filepath.Join(opts.StateDir, "recordings")
	// the demo user views everything, steers the dome (a role with ptz),
	// plays back and exports recordings (a role with playback and export)
	cfg.Auth.Roles = []config.Role{
		{Name: "demo-operator", Cameras: []string{"*"}, Rights: []string{"view", "ptz"}, PTZPriority: 100},
		{Name: "investigator", Cameras: []string{"*"}, Rights: []string{"playback", "export"}},
	}
	cfg.Auth.Users = []config.User{{Name: d.User, PasswordHash: hash, Cameras: []string{"*"}, Admin: true,
		Roles: []string{"demo-operator", "investigator"}, RTSPDigestHA1: rtspserve.HA1(d.User, d.Password)}}
	return cfg, nil
}

// startCameras starts the synthetic cameras, adds them to cfg and returns
// their secrets. Every demo camera has its own random credentials, so the
// demo also shows that camera secrets never reach logs, API or viewer.
func (d *Demo) startCameras(cfg *config.Config, logger *slog.Logger) ([]string, error) {
	var secrets []string
	for _, dc := range demoCameras {
		user, pass := "viewer", randomSecret(9)
		secrets = append(secrets, pass)
		cam := &democam.Camera{ID: dc.id, Listen: net.JoinHostPort(dc.host, "0"), Path: "Streaming/Channels/101",
			Username: user, Password: pass, Audio: dc.audio, Quirks: dc.quirks,
			Logger: logger.With("component", "democam", "camera", dc.id)}
		if err := cam.Initialize(); err != nil {
			return nil, fmt.Errorf("demo camera %s on %s: %w (is 127.0.0.0/8 routed to lo?)", dc.id, dc.host, err)
		}
		d.Cameras = append(d.Cameras, cam)
		cfg.Cameras = append(cfg.Cameras, config.Camera{ID: dc.id, Name: dc.name, URL: cam.URL(), Username: user, Password: pass,
			Transport: config.TransportAuto, OnDemand: dc.onDemand, Record: dc.record})
	}
	// the PTZ dome: ONVIF (PTZ through cordon) and a sub stream for the grid
	user, pass := "onvif", randomSecret(9)
	secrets = append(secrets, pass)
	dome := democam.DemoPTZCamera(domeHost, user, pass, logger.With("component", "democam", "camera", "dome"))
	if err := dome.Initialize(); err != nil {
		return nil, fmt.Errorf("demo camera dome on %s: %w (is 127.0.0.0/8 routed to lo?)", domeHost, err)
	}
	d.Dome = dome
	cfg.Cameras = append(cfg.Cameras, config.Camera{ID: dome.ID, Name: "PTZ dome", URL: dome.URL(), SubURL: dome.SubURL(),
		ONVIF: dome.ONVIFURL(), Username: user, Password: pass, Transport: config.TransportTCP})
	return secrets, nil
}

// domeHost is the PTZ dome's loopback host.
const domeHost = "127.0.0.5"

// phoneHome makes the vendor-style demo cameras try to reach their clouds
// through the sinkhole, as real ones do, so the egress report has content.
func (d *Demo) phoneHome(ctx context.Context, dnsAddr string) {
	defer d.wg.Done()
	if dnsAddr == "" {
		return
	}
	for round := 0; ; round++ {
		for _, dc := range demoCameras {
			for _, name := range dc.phoneHome {
				c := &dns.Client{Net: "udp", Timeout: time.Second,
					Dialer: &net.Dialer{LocalAddr: &net.UDPAddr{IP: net.ParseIP(dc.host)}, Timeout: time.Second}}
				m := new(dns.Msg)
				m.SetQuestion(name, dns.TypeA)
				_, _, _ = c.ExchangeContext(ctx, m, dnsAddr)
			}
		}
		wait := 30 * time.Second
		if round == 0 {
			wait = 5 * time.Second
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// Close stops the gateway and the cameras and removes the temporary state.
func (d *Demo) Close() {
	if d.cancel != nil {
		d.cancel()
	}
	d.wg.Wait()
	if d.Gateway != nil {
		d.Gateway.Close()
	}
	for _, c := range d.Cameras {
		c.Close()
	}
	if d.Dome != nil {
		d.Dome.Close()
	}
	if d.tmp != "" {
		_ = os.RemoveAll(d.tmp)
	}
}
