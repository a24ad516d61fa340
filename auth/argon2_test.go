package auth

import (
	"errors"
	"strings"
	"testing"
)

// fastParams keep tests quick; the format and code path are the same.
var fastParams = Argon2Params{MemoryKiB: 1024, Time: 1, Threads: 1}

func mustHash(t testing.TB, secret string) string {
	t.Helper()
	h, err := hashSecretParams([]byte(secret), fastParams)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestHashSecretDefaultFormatAndRoundTrip(t *testing.T) {
	h, err := HashSecret([]byte("correct horse"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=65536,t=3,p=2$") {
		t.Fatalf("unexpected format %q", h)
	}
	parts := strings.Split(h, "$")
	if len(parts[4]) != 22 || len(parts[5]) != 43 {
		t.Fatalf("salt/hash not 16/32 bytes of raw base64: %q", h)
	}
	ok, err := VerifySecret(h, []byte("correct horse"))
	if err != nil || !ok {
		t.Fatalf("verify correct: ok=%v err=%v", ok, err)
	}
	ok, err = VerifySecret(h, []byte("correct horsE"))
	if err != nil || ok {
		t.Fatalf("verify wrong: ok=%v err=%v", ok, err)
	}
	h2, _ := HashSecret([]byte("correct horse"))
	if h2 == h {
		t.Fatal("two hashes of the same secret are equal: salt not random")
	}
}

// Reference vector produced by the argon2 reference CLI
// (echo -n password | argon2 somesalt -id -t 2 -m 16 -p 4 -l 32 -e),
// as quoted by several independent implementations.
func TestVerifySecretReferenceVector(t *testing.T) {
	const ref = "$argon2id$v=19$m=65536,t=2,p=4$c29tZXNhbHQ$GpZ3sK/oH9p7VIiV56G/64Zo/8GaUw434IimaPqxwCo"
	ok, err := VerifySecret(ref, []byte("password"))
	if err != nil || !ok {
		t.Fatalf("reference vector: ok=%v err=%v", ok, err)
	}
}

func TestVerifySecretMalformed(t *testing.T) {
	good := mustHash(t, "x")
	parts := strings.Split(good, "$")
	salt, key := parts[4], parts[5]
	cases := map[string]string{
		"empty":          "",
		"bcrypt":         "$2a$10$abcdefghijklmnopqrstuuABCDEFGHIJKLMNOPQRSTUVWXYZ01234",
		"argon2i":        "$argon2i$v=19$m=1024,t=1,p=1$" + salt + "$" + key,
		"version 16":     "$argon2id$v=16$m=1024,t=1,p=1$" + salt + "$" + key,
		"no version":     "$argon2id$m=1024,t=1,p=1$" + salt + "$" + key,
		"huge memory":    "$argon2id$v=19$m=4194304,t=1,p=1$" + salt + "$" + key,
		"huge time":      "$argon2id$v=19$m=1024,t=1000000,p=1$" + salt + "$" + key,
		"huge threads":   "$argon2id$v=19$m=1024,t=1,p=255$" + salt + "$" + key,
		"p overflow":     "$argon2id$v=19$m=1024,t=1,p=257$" + salt + "$" + key,
		"zero time":      "$argon2id$v=19$m=1024,t=0,p=1$" + salt + "$" + key,
		"zero threads":   "$argon2id$v=19$m=1024,t=1,p=0$" + salt + "$" + key,
		"tiny memory":    "$argon2id$v=19$m=7,t=1,p=1$" + salt + "$" + key,
		"negative":       "$argon2id$v=19$m=-1,t=1,p=1$" + salt + "$" + key,
		"leading zero":   "$argon2id$v=19$m=01024,t=1,p=1$" + salt + "$" + key,
		"reordered":      "$argon2id$v=19$t=1,m=1024,p=1$" + salt + "$" + key,
		"extra param":    "$argon2id$v=19$m=1024,t=1,p=1,k=2$" + salt + "$" + key,
		"padded salt":    "$argon2id$v=19$m=1024,t=1,p=1$" + salt + "==$" + key,
		"bad b64 salt":   "$argon2id$v=19$m=1024,t=1,p=1$!!!!!!!!!!$" + key,
		"short salt":     "$argon2id$v=19$m=1024,t=1,p=1$YWJj$" + key,
		"short hash":     "$argon2id$v=19$m=1024,t=1,p=1$" + salt + "$YWJjZGVm",
		"bad b64 hash":   "$argon2id$v=19$m=1024,t=1,p=1$" + salt + "$" + key[:len(key)-1] + "*",
		"missing hash":   "$argon2id$v=19$m=1024,t=1,p=1$" + salt,
		"trailing field": good + "$x",
		"too long":       "$argon2id$v=19$m=1024,t=1,p=1$" + strings.Repeat("A", 300) + "$" + key,
	}
	for name, enc := range cases {
		ok, err := VerifySecret(enc, []byte("x"))
		if ok || !errors.Is(err, ErrMalformedHash) {
			t.Errorf("%s: ok=%v err=%v, want ErrMalformedHash", name, ok, err)
		}
		if err != nil && strings.Contains(err.Error(), "x\"") {
			t.Errorf("%s: error leaks input: %v", name, err)
		}
	}
}

func TestDummyHashNeverMatches(t *testing.T) {
	d, err := dummyHash(fastParams)
	if err != nil {
		t.Fatal(err)
	}
	if d.verify([]byte("")) || d.verify([]byte("x")) {
		t.Fatal("dummy hash matched")
	}
	if _, err := dummyHash(Argon2Params{MemoryKiB: 1 << 30, Time: 1, Threads: 1}); err == nil {
		t.Fatal("dummy with absurd params accepted")
	}
}
