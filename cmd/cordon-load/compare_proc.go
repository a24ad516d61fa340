package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Processes of a comparison: servers on one core, the camera and the load
// on the other, and what /proc says about them.

// proc is a child process with its log file.
type proc struct {
	cmd  *exec.Cmd
	done chan struct{}
	err  error
	log  *os.File
}

// startPinned starts argv on cpu, its output to logPath.
func startPinned(taskset string, cpu int, logPath string, argv ...string) (*proc, error) {
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(taskset, append([]string{"-c", strconv.Itoa(cpu)}, argv...)...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, err
	}
	p := &proc{cmd: cmd, done: make(chan struct{}), log: f}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM (taskset execs the program, so the pid is the
// server's) and kills it after 15 s.
func (p *proc) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
	p.log.Close()
}

// procCPU is a process's user+system CPU time (all threads).
func procCPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// the command name may hold spaces: fields start after the last ')'
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * time.Second / 100 // USER_HZ
}

// procRSS is a process's resident set (VmRSS) in bytes.
func procRSS(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// cpuBusy is the busy time of one core since boot (/proc/stat: all but
// idle and iowait).
func cpuBusy(cpu int) time.Duration {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	want := "cpu" + strconv.Itoa(cpu) + " "
	for line := range strings.SplitSeq(string(b), "\n") {
		if !strings.HasPrefix(line, want) {
			continue
		}
		var busy int64
		for i, v := range strings.Fields(line)[1:] {
			n, _ := strconv.ParseInt(v, 10, 64)
			if i != 3 && i != 4 && i < 8 { // idle, iowait; guest is inside user
				busy += n
			}
		}
		return time.Duration(busy) * time.Second / 100
	}
	return 0
}

// loadAvg is the 1-minute load average.
func loadAvg() float64 {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0
	}
	v, _ := strconv.ParseFloat(f[0], 64)
	return v
}

// sample is what the steady window's two ends see.
type sample struct {
	at                    time.Time
	server, client, core0 time.Duration
	load                  float64
}

func takeSample(server, client, core int) sample {
	return sample{at: time.Now(), server: procCPU(server), client: procCPU(client), core0: cpuBusy(core), load: loadAvg()}
}

// measured is one load run against one server.
type measured struct {
	rep          report
	window       time.Duration
	serverCPU    time.Duration // over the window
	clientCPU    time.Duration
	coreBusy     time.Duration
	rss          int64 // server VmRSS at the window's end
	loadLo, load float64
}

// runLoad runs the load tool (pinned to the client core) against a server
// and samples the server at the window's markers.
func (b *bench) runLoad(ctx context.Context, srv *proc, args ...string) (measured, error) {
	return b.runLoadNotify(ctx, srv, nil, args...)
}

// runLoadNotify is runLoad calling onBegin (if not nil) when the steady
// window begins.
func (b *bench) runLoadNotify(ctx context.Context, srv *proc, onBegin func(), args ...string) (measured, error) {
	var m measured
	argv := append([]string{b.o.taskset, "-c", strconv.Itoa(b.o.clientCPU), b.o.load}, args...)
	argv = append(argv, "--json", "--markers", "--quiet")
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return m, err
	}
	if err := cmd.Start(); err != nil {
		return m, err
	}
	var begin sample
	var js bytes.Buffer
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		switch line := sc.Text(); line {
		case "STEADY-BEGIN":
			begin = takeSample(srv.pid(), cmd.Process.Pid, b.o.serverCPU)
			if onBegin != nil {
				onBegin()
				onBegin = nil
			}
		case "STEADY-END":
			end := takeSample(srv.pid(), cmd.Process.Pid, b.o.serverCPU)
			m.window, m.serverCPU, m.clientCPU = end.at.Sub(begin.at), end.server-begin.server, end.client-begin.client
			m.coreBusy, m.loadLo, m.load = end.core0-begin.core0, min(begin.load, end.load), max(begin.load, end.load)
			m.rss = procRSS(srv.pid())
		default:
			js.WriteString(line + "\n")
		}
	}
	err = cmd.Wait()
	if onBegin != nil {
		onBegin()
	}
	if jerr := json.Unmarshal(js.Bytes(), &m.rep); jerr != nil {
		return m, fmt.Errorf("load %v: %v (%v): %s", args, err, jerr, strings.TrimSpace(stderr.String()))
	}
	return m, nil
}

// freePort returns a loopback port free right now.
func freePort(network string) int {
	if network == "udp" {
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			return 0
		}
		defer c.Close()
		return c.LocalAddr().(*net.UDPAddr).Port
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// tail returns the last lines of a log file (for error messages).
func tail(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	b, _ := io.ReadAll(io.LimitReader(f, 1<<20))
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
