package camnet

import "golang.org/x/sys/unix"

// ClockSynchronised asks the kernel (adjtimex, read-only) whether the system
// clock is synchronised: STA_UNSYNC clear and no TIME_ERROR state. Suitable
// for NTPServer.Synchronised (ignore the error there).
func ClockSynchronised() (bool, error) {
	var tx unix.Timex
	state, err := unix.Adjtimex(&tx)
	if err != nil {
		return false, err
	}
	return state != unix.TIME_ERROR && tx.Status&unix.STA_UNSYNC == 0, nil
}
