package auth

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
)

// Argon2Params are the cost parameters of an argon2id hash in PHC form.
type Argon2Params struct {
	MemoryKiB uint32 // m
	Time      uint32 // t (iterations)
	Threads   uint8  // p (parallelism)
}

// DefaultArgon2Params returns the parameters HashSecret uses
// (m=64 MiB, t=3, p=2; between the RFC 9106 second recommendation
// and OWASP's guidance).
func DefaultArgon2Params() Argon2Params {
	return Argon2Params{MemoryKiB: 64 * 1024, Time: 3, Threads: 2}
}

// Bounds applied when parsing a hash. A hash from a hostile or mistyped
// config must not make every login allocate gigabytes or spin for minutes.
const (
	maxArgon2MemoryKiB = 256 * 1024 // 256 MiB
	maxArgon2Time      = 16
	maxArgon2Threads   = 16
	minSaltLen         = 8
	maxSaltLen         = 64
	minKeyLen          = 16
	maxKeyLen          = 64
	maxEncodedLen      = 256
	argon2SaltLen      = 16
	argon2KeyLen       = 32
)

// ErrMalformedHash is returned (wrapped) for an encoded hash that is not a
// well-formed, bounded argon2id PHC string.
var ErrMalformedHash = errors.New("malformed argon2id hash")

// HashSecret hashes secret with argon2id and DefaultArgon2Params, returning
// the PHC string $argon2id$v=19$m=65536,t=3,p=2$<salt>$<hash> (unpadded
// standard base64, as the reference implementation).
func HashSecret(secret []byte) (string, error) {
	return hashSecretParams(secret, DefaultArgon2Params())
}

func hashSecretParams(secret []byte, p Argon2Params) (string, error) {
	if err := p.validate(); err != nil {
		return "", err
	}
	salt := make([]byte, argon2SaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("reading random salt: %w", err)
	}
	key := argon2.IDKey(secret, salt, p.Time, p.MemoryKiB, p.Threads, argon2KeyLen)
	return encodePHC(p, salt, key), nil
}

func encodePHC(p Argon2Params, salt, key []byte) string {
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, p.MemoryKiB, p.Time, p.Threads,
		base64.RawStdEncoding.EncodeToString(salt),
		base64.RawStdEncoding.EncodeToString(key))
}

// VerifySecret reports whether secret matches the argon2id PHC string
// encoded. The comparison is constant-time. An error means the encoded
// hash is malformed or out of bounds (it never reveals the secret).
func VerifySecret(encoded string, secret []byte) (bool, error) {
	ph, err := parsePHC(encoded)
	if err != nil {
		return false, err
	}
	return ph.verify(secret), nil
}

// ParseHash checks that encoded is a well-formed, bounded argon2id hash
// and returns its parameters. Use it to validate configuration.
func ParseHash(encoded string) (Argon2Params, error) {
	ph, err := parsePHC(encoded)
	if err != nil {
		return Argon2Params{}, err
	}
	return ph.params, nil
}

type phc struct {
	params Argon2Params
	salt   []byte
	key    []byte
}

func (ph phc) verify(secret []byte) bool {
	if ph.params.validate() != nil || len(ph.key) == 0 {
		return false // zero value or unvalidated: never panic inside argon2
	}
	got := argon2.IDKey(secret, ph.salt, ph.params.Time, ph.params.MemoryKiB, ph.params.Threads, uint32(len(ph.key)))
	return subtle.ConstantTimeCompare(got, ph.key) == 1
}

func (p Argon2Params) validate() error {
	switch {
	case p.Threads < 1 || p.Threads > maxArgon2Threads:
		return fmt.Errorf("%w: p must be 1..%d", ErrMalformedHash, maxArgon2Threads)
	case p.Time < 1 || p.Time > maxArgon2Time:
		return fmt.Errorf("%w: t must be 1..%d", ErrMalformedHash, maxArgon2Time)
	case p.MemoryKiB < 8*uint32(p.Threads) || p.MemoryKiB > maxArgon2MemoryKiB:
		return fmt.Errorf("%w: m must be %d..%d KiB", ErrMalformedHash, 8*uint32(p.Threads), maxArgon2MemoryKiB)
	}
	return nil
}

func parsePHC(encoded string) (phc, error) {
	if len(encoded) > maxEncodedLen {
		return phc{}, fmt.Errorf("%w: too long", ErrMalformedHash)
	}
	parts := strings.Split(encoded, "$")
	// "", "argon2id", "v=19", "m=..,t=..,p=..", salt, hash
	if len(parts) != 6 || parts[0] != "" {
		return phc{}, fmt.Errorf("%w: expected $argon2id$v=19$m=..,t=..,p=..$salt$hash", ErrMalformedHash)
	}
	if parts[1] != "argon2id" {
		return phc{}, fmt.Errorf("%w: algorithm must be argon2id", ErrMalformedHash)
	}
	if parts[2] != "v="+strconv.Itoa(argon2.Version) {
		return phc{}, fmt.Errorf("%w: version must be v=%d", ErrMalformedHash, argon2.Version)
	}
	var p Argon2Params
	kv := strings.Split(parts[3], ",")
	if len(kv) != 3 {
		return phc{}, fmt.Errorf("%w: parameters must be m=<n>,t=<n>,p=<n>", ErrMalformedHash)
	}
	for i, name := range []string{"m", "t", "p"} {
		val, ok := strings.CutPrefix(kv[i], name+"=")
		if !ok || val == "" || (len(val) > 1 && val[0] == '0') {
			return phc{}, fmt.Errorf("%w: parameters must be m=<n>,t=<n>,p=<n>", ErrMalformedHash)
		}
		n, err := strconv.ParseUint(val, 10, 32)
		if err != nil {
			return phc{}, fmt.Errorf("%w: parameter %s is not a number", ErrMalformedHash, name)
		}
		switch name {
		case "m":
			p.MemoryKiB = uint32(n)
		case "t":
			p.Time = uint32(n)
		case "p":
			if n > 255 {
				return phc{}, fmt.Errorf("%w: p must be 1..%d", ErrMalformedHash, maxArgon2Threads)
			}
			p.Threads = uint8(n)
		}
	}
	if err := p.validate(); err != nil {
		return phc{}, err
	}
	salt, err := base64.RawStdEncoding.Strict().DecodeString(parts[4])
	if err != nil || len(salt) < minSaltLen || len(salt) > maxSaltLen {
		return phc{}, fmt.Errorf("%w: salt must be %d..%d bytes of unpadded base64", ErrMalformedHash, minSaltLen, maxSaltLen)
	}
	key, err := base64.RawStdEncoding.Strict().DecodeString(parts[5])
	if err != nil || len(key) < minKeyLen || len(key) > maxKeyLen {
		return phc{}, fmt.Errorf("%w: hash must be %d..%d bytes of unpadded base64", ErrMalformedHash, minKeyLen, maxKeyLen)
	}
	return phc{params: p, salt: salt, key: key}, nil
}

// dummyHash returns a freshly salted hash with parameters p that no secret
// matches (its key is random, not derived). Verifying against it costs the
// same as verifying a real hash with parameters p: it is what an unknown
// user name is checked against, so that it takes as long as a wrong
// password.
func dummyHash(p Argon2Params) (phc, error) {
	if err := p.validate(); err != nil {
		return phc{}, err
	}
	buf := make([]byte, argon2SaltLen+argon2KeyLen)
	if _, err := rand.Read(buf); err != nil {
		return phc{}, fmt.Errorf("reading random bytes: %w", err)
	}
	return phc{params: p, salt: buf[:argon2SaltLen], key: buf[argon2SaltLen:]}, nil
}
