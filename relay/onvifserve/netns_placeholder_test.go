package onvifserve

const netnsEnv = "CORDON_ONVIF_NETNS"
