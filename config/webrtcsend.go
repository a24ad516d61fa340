package config

// How WHEP media leaves the gateway (relay/whep): UDPGSO "auto" batches
// each frame's packets to a viewer into UDP segmentation offload sends
// where the kernel has it, "off" sends them one by one; every session's
// sends are paced at SendBurstPackets at once and SendRatePackets a second
// (never below twice the stream's own rate), so a new viewer's cached GOP
// fits a browser's default UDP receive buffer.
func (v *validator) webrtcSend(w *WebRTC) {
	if w.UDPGSO != "auto" && w.UDPGSO != "off" {
		v.add("webrtc.udp_gso", `must be "auto" or "off"`)
	}
	if w.SendBurstPackets < 8 || w.SendBurstPackets > 512 {
		v.add("webrtc.send_burst_packets", "must be 8..512 (packets sent at once; a browser's default receive buffer holds about 90)")
	}
	if w.SendRatePackets < 500 || w.SendRatePackets > 100000 {
		v.add("webrtc.send_rate_packets", "must be 500..100000 (packets a second)")
	}
}
