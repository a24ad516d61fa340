package democam

import (
	"fmt"
	"log/slog"
	"net"
)

// DemoCameras returns n clean cameras for `cordon demo`, not yet
// initialized: ids "demo-1".."demo-n", each on host (e.g. "127.0.0.1") with
// a free port chosen at Initialize, path "stream", PCMU tone on the odd ones,
// and the given credentials (empty username = no auth). Call Initialize on
// each, then use URL(); Close them when done.
func DemoCameras(n int, host, username, password string, logger *slog.Logger) []*Camera {
	cams := make([]*Camera, n)
	for i := range cams {
		cams[i] = &Camera{
			ID:       fmt.Sprintf("demo-%d", i+1),
			Listen:   net.JoinHostPort(host, "0"),
			Path:     "stream",
			Username: username,
			Password: password,
			Logger:   logger,
			Audio:    i%2 == 0,
		}
	}
	return cams
}
