package httpdigest

import "testing"

func TestParseResponse(t *testing.T) {
	const base = `username="a\"b", realm="cordon", nonce=n1, uri="rtsp://h/x", response="r"`
	d, err := ParseResponse(base + `, algorithm=MD5, qop=auth, nc=00000001, cnonce="c", opaque="o"`)
	if err != nil {
		t.Fatal(err)
	}
	want := Response{Username: `a"b`, Realm: "cordon", Nonce: "n1", URI: "rtsp://h/x", Response: "r", Algorithm: "MD5", QOP: "auth", NC: "00000001", CNonce: "c"}
	if d != want {
		t.Fatalf("%+v, want %+v", d, want)
	}
	for _, bad := range []string{
		"",
		base + `, realm="x"`,    // a parameter twice
		base + ` qop=auth`,      // not separated by a comma
		base + `, cnonce="open`, // unterminated quote
		base + `, qop=auth`,     // qop without nc and cnonce
		`realm="cordon", nonce=n1, uri=u, response=r`, // no username
		base + `, flag`, // a parameter without a value
	} {
		if _, err := ParseResponse(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
