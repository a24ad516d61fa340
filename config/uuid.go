package config

import (
	"encoding/hex"
	"errors"
)

// ParseUUID parses a UUID in 8-4-4-4-12 or 32-hex form (case-insensitive).
func ParseUUID(s string) ([16]byte, error) {
	var u [16]byte
	h := s
	if len(s) == 36 {
		if s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
			return u, errors.New("bad UUID")
		}
		h = s[0:8] + s[9:13] + s[14:18] + s[19:23] + s[24:]
	}
	if len(h) != 32 {
		return u, errors.New("bad UUID")
	}
	if _, err := hex.Decode(u[:], []byte(h)); err != nil {
		return u, errors.New("bad UUID")
	}
	return u, nil
}

// SEIUUIDs returns sanitize.allow_sei_uuids as bytes, skipping invalid
// entries (which Validate reports).
func (s *Sanitize) SEIUUIDs() [][16]byte {
	out := make([][16]byte, 0, len(s.AllowSEIUUIDs))
	for _, str := range s.AllowSEIUUIDs {
		if u, err := ParseUUID(str); err == nil {
			out = append(out, u)
		}
	}
	return out
}
