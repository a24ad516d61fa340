// Package session is the one registry of live viewing sessions, shared by
// every door (WHEP in relay/whep, RTSP in relay/rtspserve): it lists them
// (admin API; a cluster lists every node's), ends them (an admin's kill, a
// logout, a reload or directory re-check that narrowed someone's rights)
// and caps them (per protocol and per principal). It makes no access
// decision itself: Recheck takes the owner's decision as a function.
package session

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
)

// KindPeer is the Kind of a session that another node of a cluster holds
// to relay a camera this node owns. Peer sessions are listed (and can be
// ended) like any other, but count against no cap: a node relays each
// camera at most once, so they are bounded by the number of cameras.
const KindPeer = "peer"

// Default caps.
const (
	DefaultMaxPerProtocol  = 1000
	DefaultMaxPerPrincipal = 64
)

// Info describes a live viewing session.
type Info struct {
	ID       string // unguessable (NewID)
	Camera   string
	Stream   string // "" = the camera's main stream
	User     string // principal name: a user or an API key
	Kind     string // "user", "api_key", or KindPeer
	Remote   string // client address as the door sees it
	TokenID  string // the session token that opened it ("" for API keys and RTSP)
	Protocol string // "webrtc" or "rtsp"
	Started  time.Time
	Bytes    uint64 // RTP payload bytes sent so far
	// Principal is the owner's handle on who opened the session (the
	// gateway's *auth.Principal), opaque to the registry and the doors:
	// the owner's live re-check reads it, nothing else does.
	Principal any
	// Reason says why the session ended ("" while it is live): the first
	// reason End was given, or the door's own (e.g. "disconnected").
	Reason string
}

// Session is a door's live session as the registry sees it.
type Session interface {
	Info() Info
	// End asks the session to stop for reason; the door removes it from
	// the registry (Remove) once it has. End must not wait for that.
	End(reason string)
}

// ErrClosed: the registry is closed (shutdown); no session may start.
var ErrClosed = errors.New("the server is shutting down")

// LimitError refuses a session past a cap.
type LimitError struct {
	Principal bool // the principal's cap (else the protocol's)
	Count     int  // sessions held now
}

func (e *LimitError) Error() string {
	if e.Principal {
		return fmt.Sprintf("you already have %d live sessions, the most one account may hold; end one first", e.Count)
	}
	return "the gateway is at its session limit; try again later"
}

// Registry holds the live sessions of every door. The zero value is ready,
// with the default caps.
type Registry struct {
	// MaxPerProtocol caps the live sessions of one protocol (default 1000,
	// <0 = no cap); MaxPerPrincipal one principal's sessions of one
	// protocol (default 64, <0 = no cap), so one leaked token or runaway
	// video wall cannot take the gateway.
	MaxPerProtocol  int
	MaxPerPrincipal int

	mu       sync.Mutex
	closed   bool
	sessions map[string]Session
	meta     map[string]key // protocol and principal of each session
	counts   map[key]int    // by protocol (name "") and by protocol+principal
}

type key struct{ protocol, name string }

// NewID returns an unguessable session id (128 random bits, hex).
func NewID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// ValidID reports whether id has NewID's shape.
func ValidID(id string) bool {
	if len(id) != 32 {
		return false
	}
	_, err := hex.DecodeString(id)
	return err == nil
}

func capOf(v, def int) int {
	if v == 0 {
		return def
	}
	return v
}

// checkLocked returns a *LimitError when one more session would pass a cap.
func (r *Registry) checkLocked(protocol, principal string) error {
	if r.closed {
		return ErrClosed
	}
	if m := capOf(r.MaxPerProtocol, DefaultMaxPerProtocol); m > 0 && r.counts[key{protocol, ""}] >= m {
		return &LimitError{Count: r.counts[key{protocol, ""}]}
	}
	if m := capOf(r.MaxPerPrincipal, DefaultMaxPerPrincipal); m > 0 {
		if n := r.counts[key{protocol, "\x00" + principal}]; n >= m {
			return &LimitError{Principal: true, Count: n}
		}
	}
	return nil
}

// Check tells whether one more session of protocol for principal may start
// now (an early, cheap refusal; Add decides).
func (r *Registry) Check(protocol, principal string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.checkLocked(protocol, principal)
}

// Add registers s unless a cap refuses it (*LimitError) or the registry is
// closed (ErrClosed).
func (r *Registry) Add(s Session) error {
	in := s.Info()
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.checkLocked(in.Protocol, in.User); err != nil && (in.Kind != KindPeer || errors.Is(err, ErrClosed)) {
		return err
	}
	if r.sessions == nil {
		r.sessions, r.meta, r.counts = map[string]Session{}, map[string]key{}, map[key]int{}
	}
	if _, dup := r.sessions[in.ID]; dup {
		return fmt.Errorf("session %s is already registered", in.ID)
	}
	r.sessions[in.ID] = s
	if in.Kind == KindPeer {
		return nil // listed, not counted (see KindPeer)
	}
	r.meta[in.ID] = key{in.Protocol, in.User}
	r.counts[key{in.Protocol, ""}]++
	r.counts[key{in.Protocol, "\x00" + in.User}]++
	return nil
}

// Remove unregisters a session (the door calls it when the session ended).
func (r *Registry) Remove(id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.sessions, id)
	k, ok := r.meta[id]
	if !ok {
		return
	}
	delete(r.meta, id)
	for _, c := range []key{{k.protocol, ""}, {k.protocol, "\x00" + k.name}} {
		if r.counts[c]--; r.counts[c] <= 0 {
			delete(r.counts, c)
		}
	}
}

// Get returns a live session.
func (r *Registry) Get(id string) (Session, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s, ok := r.sessions[id]
	return s, ok
}

func (r *Registry) all() []Session {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]Session, 0, len(r.sessions))
	for _, s := range r.sessions {
		out = append(out, s)
	}
	return out
}

// List returns the live sessions of every protocol, oldest first.
func (r *Registry) List() []Info {
	all := r.all()
	out := make([]Info, len(all))
	for i, s := range all {
		out[i] = s.Info()
	}
	slices.SortFunc(out, func(a, b Info) int {
		if c := a.Started.Compare(b.Started); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out
}

// Count returns how many sessions of protocol are live ("" = all).
func (r *Registry) Count(protocol string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	if protocol == "" {
		return len(r.sessions)
	}
	return r.counts[key{protocol, ""}]
}

// Kill ends one session and returns what it was (the snapshot taken as it
// was ended); false when there is none with that id.
func (r *Registry) Kill(id, reason string) (Info, bool) {
	s, ok := r.Get(id)
	if !ok {
		return Info{}, false
	}
	in := s.Info()
	s.End(reason)
	return in, true
}

// KillWhere ends the sessions pred selects and returns what they were.
// pred runs without the registry's lock: it may call back into it.
func (r *Registry) KillWhere(pred func(Info) bool, reason string) []Info {
	var out []Info
	for _, s := range r.all() {
		if in := s.Info(); pred(in) {
			s.End(reason)
			out = append(out, in)
		}
	}
	return out
}

// Recheck ends every session allowed refuses: the owner's live re-check of
// a session's principal and camera (after a reload, a logout, a directory
// change). The registry makes no decision of its own.
func (r *Registry) Recheck(allowed func(Info) bool) []Info {
	return r.KillWhere(func(in Info) bool { return !allowed(in) }, "revoked")
}

// Close refuses new sessions and ends every live one.
func (r *Registry) Close() {
	r.mu.Lock()
	r.closed = true
	r.mu.Unlock()
	r.KillWhere(func(Info) bool { return true }, "server_closed")
}
