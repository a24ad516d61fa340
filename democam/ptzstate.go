package democam

import (
	"math"
	"sync"
	"time"
)

// Motion rates of the synthetic dome (ONVIF generic space units per
// second): at velocity 1 pan crosses its whole range (-1..1) in 4 s.
const (
	velocityRate = 0.5
	gotoRate     = 1.0
)

// ptzAxes are pan, tilt (-1..1) and zoom (0..1).
type ptzAxes [3]float64

var (
	axisMin = ptzAxes{-1, -1, 0}
	axisMax = ptzAxes{1, 1, 1}
)

// ptzState is the dome's mechanics: a continuous move integrates its
// velocity over time until its deadline (or Stop); a goto moves every
// axis toward a target at gotoRate. Reads settle the state up to now.
type ptzState struct {
	mu     sync.Mutex
	now    func() time.Time
	pos    ptzAxes
	t0     time.Time // pos is the position at t0
	vel    ptzAxes
	until  time.Time // continuous move deadline (zero: until Stop)
	target *ptzAxes
}

func newPTZState(now func() time.Time) *ptzState {
	return &ptzState{now: now, t0: now()}
}

// settle advances pos to now (mu held).
func (s *ptzState) settle(now time.Time) {
	end := now
	if s.vel != (ptzAxes{}) && !s.until.IsZero() && s.until.Before(end) {
		end = s.until
	}
	if dt := end.Sub(s.t0).Seconds(); dt > 0 {
		for i := range s.pos {
			switch {
			case s.vel != (ptzAxes{}):
				s.pos[i] += s.vel[i] * velocityRate * dt
			case s.target != nil:
				d := s.target[i] - s.pos[i]
				step := gotoRate * dt
				if math.Abs(d) <= step {
					s.pos[i] = s.target[i]
				} else {
					s.pos[i] += math.Copysign(step, d)
				}
			}
			s.pos[i] = math.Max(axisMin[i], math.Min(axisMax[i], s.pos[i]))
		}
	}
	if s.target != nil && s.pos == *s.target {
		s.target = nil
	}
	if !s.until.IsZero() && !now.Before(s.until) {
		s.vel, s.until = ptzAxes{}, time.Time{}
	}
	s.t0 = now
}

// position returns the position now and whether the dome is moving.
func (s *ptzState) position() (ptzAxes, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.settle(s.now())
	return s.pos, s.vel != (ptzAxes{}) || s.target != nil
}

// continuousMove starts moving at v (each -1..1) until timeout (0 = until
// Stop or another command).
func (s *ptzState) continuousMove(v ptzAxes, timeout time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	s.settle(now)
	s.vel, s.target, s.until = v, nil, time.Time{}
	if timeout > 0 {
		s.until = now.Add(timeout)
	}
}

// stop halts every axis where it is.
func (s *ptzState) stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.settle(s.now())
	s.vel, s.target, s.until = ptzAxes{}, nil, time.Time{}
}

// gotoPosition moves toward p.
func (s *ptzState) gotoPosition(p ptzAxes) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.settle(s.now())
	for i := range p {
		p[i] = math.Max(axisMin[i], math.Min(axisMax[i], p[i]))
	}
	s.vel, s.until, s.target = ptzAxes{}, time.Time{}, &p
}
