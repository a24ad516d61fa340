package auth

import (
	"fmt"
	"path"
	"slices"
)

// Right is an action a principal may take on a camera.
type Right string

// The rights (CONTRACT "Rights"). Admin is not a right over cameras: it
// grants the admin API only.
const (
	RightView     Right = "view"     // live video, any protocol
	RightPTZ      Right = "ptz"      // steer the camera
	RightPlayback Right = "playback" // recordings
	RightExport   Right = "export"   // evidence exports
)

// AllRights lists the rights in their canonical order.
func AllRights() []Right { return []Right{RightView, RightPTZ, RightPlayback, RightExport} }

// PTZ priority bounds (roles' ptz_priority).
const (
	MinPTZPriority     = 1
	MaxPTZPriority     = 1000
	DefaultPTZPriority = 100 // a role with the ptz right and no ptz_priority
)

// ParseRight returns the Right named s, or an error naming the valid ones.
func ParseRight(s string) (Right, error) {
	r := Right(s)
	if r.bit() == 0 {
		return "", fmt.Errorf("unknown right %q (want view, ptz, playback or export)", s)
	}
	return r, nil
}

// rightSet is a set of rights as bits.
type rightSet uint8

func (r Right) bit() rightSet {
	switch r {
	case RightView:
		return 1
	case RightPTZ:
		return 2
	case RightPlayback:
		return 4
	case RightExport:
		return 8
	}
	return 0
}

func (s rightSet) has(r Right) bool { b := r.bit(); return b != 0 && s&b == b }

func (s rightSet) list() []Right {
	var out []Right
	for _, r := range AllRights() {
		if s.has(r) {
			out = append(out, r)
		}
	}
	return out
}

// Role is a named set of rights over camera globs (config auth.roles[]).
type Role struct {
	Name        string
	Cameras     []string // path.Match globs over camera ids
	Rights      []Right
	PTZPriority int // 1..1000 when Rights has ptz; 0 = DefaultPTZPriority
}

// grant is one resolved source of rights: the cameras shorthand (view) or
// one role.
type grant struct {
	globs    []string
	rights   rightSet
	priority int // > 0 only when rights has ptz
}

func (g grant) matches(camera string) bool {
	for _, pat := range g.globs {
		if ok, err := path.Match(pat, camera); err == nil && ok {
			return true
		}
	}
	return false
}

func grantsEqual(a, b []grant) bool {
	return slices.EqualFunc(a, b, func(x, y grant) bool {
		return x.rights == y.rights && x.priority == y.priority && slices.Equal(x.globs, y.globs)
	})
}

// resolveGrants turns a principal's cameras shorthand and role names into
// grants. Role names not in roles are skipped (Directory.Apply refuses
// them for configured principals; directory identities may name roles a
// reload removed, which then grant nothing).
func resolveGrants(cameras, roleNames []string, roles map[string]*Role) []grant {
	var out []grant
	if len(cameras) > 0 {
		out = append(out, grant{globs: slices.Clone(cameras), rights: RightView.bit()})
	}
	for _, n := range roleNames {
		r := roles[n]
		if r == nil {
			continue
		}
		g := grant{globs: slices.Clone(r.Cameras)}
		for _, rt := range r.Rights {
			g.rights |= rt.bit()
		}
		if g.rights.has(RightPTZ) {
			g.priority = r.PTZPriority
			if g.priority == 0 {
				g.priority = DefaultPTZPriority
			}
		}
		out = append(out, g)
	}
	return out
}

// validateRole checks one role; field is its config path ("auth.roles[0]").
func validateRole(field string, r *Role) error {
	if err := ValidateName(r.Name); err != nil {
		return fmt.Errorf("%s.name: %w", field, err)
	}
	if len(r.Rights) == 0 {
		return fmt.Errorf("%s.rights: must list at least one of view, ptz, playback, export", field)
	}
	var seen rightSet
	for j, rt := range r.Rights {
		b := rt.bit()
		if b == 0 {
			return fmt.Errorf("%s.rights[%d]: unknown right %q (want view, ptz, playback or export)", field, j, string(rt))
		}
		seen |= b
	}
	for j, g := range r.Cameras {
		if err := ValidatePattern(g); err != nil {
			return fmt.Errorf("%s.cameras[%d]: %w", field, j, err)
		}
	}
	switch {
	case r.PTZPriority < 0 || r.PTZPriority > MaxPTZPriority:
		return fmt.Errorf("%s.ptz_priority: must be %d..%d", field, MinPTZPriority, MaxPTZPriority)
	case r.PTZPriority != 0 && !seen.has(RightPTZ):
		return fmt.Errorf("%s.ptz_priority: set but the role has no ptz right", field)
	}
	return nil
}
