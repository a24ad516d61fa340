package auth

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
)

func testRoles() []Role {
	return []Role{
		{Name: "operator", Cameras: []string{"gate-*", "yard-*"}, Rights: []Right{RightView, RightPTZ, RightPlayback}, PTZPriority: 100},
		{Name: "supervisor", Cameras: []string{"gate-north"}, Rights: []Right{RightPTZ}, PTZPriority: 500},
		{Name: "investigator", Cameras: []string{"*"}, Rights: []Right{RightPlayback, RightExport}},
		{Name: "ptz-default", Cameras: []string{"lobby"}, Rights: []Right{RightPTZ}},
	}
}

// rolesFixture: carol is an operator and supervisor with the view
// shorthand on lobby; dave an investigator; alice an admin with no camera
// rights; the NVR key an operator.
func rolesFixture(t *testing.T) *fixture {
	t.Helper()
	f := newFixture(t)
	cfg := DirectoryConfig{
		Roles: testRoles(),
		Users: []User{
			{Name: "alice", PasswordHash: mustHash(t, alicePW), Admin: true},
			{Name: "carol", PasswordHash: mustHash(t, "carol-pw"), Cameras: []string{"lobby"}, Roles: []string{"operator", "supervisor"}},
			{Name: "dave", PasswordHash: mustHash(t, "dave-pw"), Roles: []string{"investigator"}},
		},
		APIKeys: []APIKey{{Name: "nvr-1", KeyHash: mustHash(t, vmsKey), Roles: []string{"operator", "ptz-default"}}},
	}
	if err := f.dir.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	return f
}

func lookup(t *testing.T, f *fixture, name, kind string) *Principal {
	t.Helper()
	p, ok := f.svc.Lookup(name, kind)
	if !ok {
		t.Fatalf("%s not found", name)
	}
	return p
}

func TestRightsFromRolesAndShorthand(t *testing.T) {
	f := rolesFixture(t)
	carol := lookup(t, f, "carol", KindUser)
	for cam, want := range map[string][]Right{
		"gate-north": {RightView, RightPTZ, RightPlayback},
		"gate-south": {RightView, RightPTZ, RightPlayback},
		"yard-1":     {RightView, RightPTZ, RightPlayback},
		"lobby":      {RightView}, // the cameras shorthand is view only
		"office":     nil,
		"":           nil,
	} {
		if got := carol.Rights(cam); !slices.Equal(got, want) {
			t.Errorf("carol on %q: %v, want %v", cam, got, want)
		}
	}
	// The highest priority among the roles granting ptz on that camera.
	for cam, want := range map[string]int{"gate-north": 500, "gate-south": 100, "lobby": 0, "office": 0} {
		if got := carol.PTZPriority(cam); got != want {
			t.Errorf("carol's PTZ priority on %s: %d, want %d", cam, got, want)
		}
	}
	dave := lookup(t, f, "dave", KindUser)
	if !slices.Equal(dave.Rights("anything"), []Right{RightPlayback, RightExport}) || dave.CanView("anything") {
		t.Errorf("investigator: %v", dave.Rights("anything"))
	}
	alice := lookup(t, f, "alice", KindUser)
	if !alice.Admin || alice.Rights("gate-north") != nil || alice.CanView("gate-north") {
		t.Errorf("admin grants camera rights: %v", alice.Rights("gate-north"))
	}
	nvr := lookup(t, f, "nvr-1", KindAPIKey)
	if nvr.PTZPriority("lobby") != DefaultPTZPriority || !nvr.Has(RightPTZ, "lobby") || nvr.Has(RightView, "lobby") {
		t.Errorf("role without ptz_priority: %d %v", nvr.PTZPriority("lobby"), nvr.Rights("lobby"))
	}
	if nvr.Source != SourceLocal || carol.Source != SourceLocal {
		t.Error("configured principals are local")
	}
}

func TestDirectoryRoleValidationNamesFields(t *testing.T) {
	h := mustHash(t, "x")
	cases := map[string]struct {
		cfg   DirectoryConfig
		field string
	}{
		"unknown right":     {DirectoryConfig{Roles: []Role{{Name: "r", Cameras: []string{"*"}, Rights: []Right{"view", "delete"}}}}, "auth.roles[0].rights[1]"},
		"no rights":         {DirectoryConfig{Roles: []Role{{Name: "r", Cameras: []string{"*"}}}}, "auth.roles[0].rights"},
		"priority too high": {DirectoryConfig{Roles: []Role{{Name: "r", Cameras: []string{"*"}, Rights: []Right{RightPTZ}, PTZPriority: 1001}}}, "auth.roles[0].ptz_priority"},
		"priority negative": {DirectoryConfig{Roles: []Role{{Name: "r", Cameras: []string{"*"}, Rights: []Right{RightPTZ}, PTZPriority: -1}}}, "auth.roles[0].ptz_priority"},
		"priority w/o ptz":  {DirectoryConfig{Roles: []Role{{Name: "r", Cameras: []string{"*"}, Rights: []Right{RightView}, PTZPriority: 5}}}, "auth.roles[0].ptz_priority"},
		"bad role glob":     {DirectoryConfig{Roles: []Role{{Name: "r", Cameras: []string{"gate-["}, Rights: []Right{RightView}}}}, "auth.roles[0].cameras[0]"},
		"duplicate role":    {DirectoryConfig{Roles: []Role{{Name: "r", Rights: []Right{RightView}}, {Name: "r", Rights: []Right{RightView}}}}, "auth.roles[1].name"},
		"undefined role":    {DirectoryConfig{Users: []User{{Name: "u", PasswordHash: h, Roles: []string{"nope"}}}}, "auth.users[0].roles[0]"},
		"key undefined":     {DirectoryConfig{APIKeys: []APIKey{{Name: "k", KeyHash: h, Roles: []string{"ghost"}}}}, "auth.api_keys[0].roles[0]"},
		"bad ha1":           {DirectoryConfig{Users: []User{{Name: "u", PasswordHash: h, DigestHA1: "xyz"}}}, "auth.users[0].rtsp_digest_ha1"},
	}
	for name, tc := range cases {
		_, err := NewDirectoryConfig(tc.cfg)
		if err == nil || !strings.HasPrefix(err.Error(), tc.field+":") {
			t.Errorf("%s: %v (want field %s)", name, err, tc.field)
		}
	}
	if _, err := ParseRight("delete"); err == nil {
		t.Error("ParseRight accepted an unknown right")
	}
	for _, r := range AllRights() {
		if got, err := ParseRight(string(r)); err != nil || got != r {
			t.Errorf("ParseRight(%s): %v %v", r, got, err)
		}
	}
}

type catalog map[string]bool

func (c catalog) CameraExists(id, stream string) bool {
	if stream == "sub" {
		return c[id+"/sub"]
	}
	return c[id]
}

// The one authorizer: deny by default, permission before existence (a
// camera outside the caller's rights and one that does not exist get the
// same answer), denials audited, the audit log must be writable.
// (Function over 80 lines: cases in a table or subtests sharing one fixture.)
func TestAuthorize(t *testing.T) {
	f := rolesFixture(t)
	f.svc.Cameras = catalog{"gate-north": true, "gate-south": true, "office": true, "lobby": true, "gate-north/sub": true}
	carol := lookup(t, f, "carol", KindUser)
	ctx := context.Background()
	ask := func(p *Principal, r Right, cam, stream string) error {
		return f.svc.Authorize(ctx, Access{Principal: p, Right: r, Camera: cam, Stream: stream, Remote: "192.0.2.5", Protocol: "http"})
	}
	for _, ok := range []struct {
		r   Right
		cam string
	}{{RightView, "gate-north"}, {RightPTZ, "gate-north"}, {RightPlayback, "gate-south"}, {RightView, "lobby"}} {
		if err := ask(carol, ok.r, ok.cam, ""); err != nil {
			t.Errorf("carol %s %s: %v", ok.r, ok.cam, err)
		}
	}
	if err := ask(carol, RightView, "gate-north", "sub"); err != nil {
		t.Errorf("sub stream: %v", err)
	}
	denied := f.countEvents(t, "denied")
	forbidden := ask(carol, RightView, "office", "")       // exists, not permitted
	unknownOutside := ask(carol, RightView, "nowhere", "") // does not exist, not permitted
	if !errors.Is(forbidden, ErrForbidden) || !errors.Is(unknownOutside, ErrForbidden) {
		t.Fatalf("forbidden %v, unknown %v", forbidden, unknownOutside)
	}
	if Explain(forbidden) != Explain(unknownOutside) {
		t.Fatalf("different answers: %+v vs %+v", Explain(forbidden), Explain(unknownOutside))
	}
	// Permitted by a glob but absent: only now may the caller learn it.
	unknownInside := ask(carol, RightView, "gate-west", "")
	if !errors.Is(unknownInside, ErrNoSuchCamera) || Explain(unknownInside).HTTPStatus != http.StatusNotFound || Explain(unknownInside).RTSPStatus != 404 {
		t.Fatalf("permitted unknown camera: %v", unknownInside)
	}
	if err := ask(carol, RightView, "gate-south", "sub"); !errors.Is(err, ErrNoSuchCamera) {
		t.Fatalf("missing sub stream: %v", err)
	}
	if err := ask(carol, RightExport, "gate-north", ""); !errors.Is(err, ErrForbidden) {
		t.Fatalf("export without the right: %v", err)
	}
	alice := lookup(t, f, "alice", KindUser)
	if err := ask(alice, RightView, "gate-north", ""); !errors.Is(err, ErrForbidden) {
		t.Fatalf("admin viewing without rights: %v", err)
	}
	if err := ask(nil, RightView, "gate-north", ""); !errors.Is(err, ErrNoCredentials) {
		t.Fatalf("nil principal: %v", err)
	}
	if err := ask(carol, Right("launch"), "gate-north", ""); !errors.Is(err, ErrForbidden) {
		t.Fatalf("unknown right: %v", err)
	}
	var lines []auditLine
	for _, e := range f.auditEvents(t) {
		if e.Event == "denied" {
			lines = append(lines, e)
		}
	}
	if len(lines)-denied != 4 || lines[denied].Actor != "carol" || lines[denied].Camera != "office" || lines[denied].Remote != "192.0.2.5" ||
		!strings.Contains(lines[denied].Detail, "view") {
		t.Fatalf("denials audited: %+v", lines[denied:])
	}
	// Current rights, not the ones at authentication: a reload that
	// narrows a role applies at once to a principal already held.
	roles := testRoles()
	roles[0].Cameras = []string{"yard-*"}
	carolHash := f.dir.current().users["carol"].encoded
	cfg := DirectoryConfig{Roles: roles, Users: []User{
		{Name: "carol", PasswordHash: carolHash, Cameras: []string{"lobby"}, Roles: []string{"operator", "supervisor"}},
	}}
	if err := f.dir.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	if err := ask(carol, RightView, "gate-south", ""); !errors.Is(err, ErrForbidden) {
		t.Fatalf("narrowed role still grants: %v", err)
	}
	if cur, err := f.svc.Current(carol); err != nil || cur.PTZPriority("gate-north") != 500 || cur.Has(RightPTZ, "gate-south") {
		t.Fatalf("current: %+v %v", cur, err)
	}
	cfg.Users[0].PasswordHash = mustHash(t, "carol-new-pw")
	if err := f.dir.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	if err := ask(carol, RightView, "lobby", ""); !errors.Is(err, ErrPrincipalGone) || Explain(err).HTTPStatus != 401 {
		t.Fatalf("changed password, old principal: %v", err)
	}
	// Fail closed.
	f.svc.Audit = failingAudit{}
	if err := ask(lookup(t, f, "carol", KindUser), RightView, "lobby", ""); !errors.Is(err, ErrAuditUnavailable) || Explain(err).HTTPStatus != 503 {
		t.Fatalf("broken audit: %v", err)
	}
}

// Explain is the one mapping from auth errors to answers.
func TestExplainMapsEveryError(t *testing.T) {
	cases := []struct {
		err        error
		http, rtsp int
		retry      bool
		challenge  string
	}{
		{ErrNoCredentials, 401, 401, false, `Bearer realm="cordon"`},
		{ErrBareAPIKey, 401, 401, false, `Bearer realm="cordon", error="invalid_request"`},
		{ErrTokenExpired, 401, 401, false, `Bearer realm="cordon", error="invalid_token"`},
		{ErrBadCredentials, 401, 401, false, `Bearer realm="cordon", error="invalid_token"`},
		{ErrPrincipalGone, 401, 401, false, `Bearer realm="cordon", error="invalid_token"`},
		{&LockedOutError{RetryAfter: 1500 * 1e6}, 429, 503, true, ""},
		{&BusyError{RetryAfter: 3e9}, 503, 503, true, ""},
		{ErrAuditUnavailable, 503, 503, true, ""},
		{ErrForbidden, 403, 403, false, ""},
		{ErrNoSuchCamera, 404, 404, false, ""},
		{errors.New("boom"), 500, 500, false, ""},
	}
	for _, tc := range cases {
		a := Explain(tc.err)
		if a.HTTPStatus != tc.http || a.RTSPStatus != tc.rtsp || (a.RetryAfter > 0) != tc.retry || a.Challenge != tc.challenge || a.Message == "" {
			t.Errorf("%v: %+v", tc.err, a)
		}
		w := httptest.NewRecorder()
		WriteError(w, tc.err)
		if w.Code != tc.http || (w.Header().Get("Retry-After") != "") != tc.retry || w.Header().Get("WWW-Authenticate") != tc.challenge {
			t.Errorf("WriteError %v: %d %v", tc.err, w.Code, w.Header())
		}
		if strings.Contains(w.Body.String(), "boom") {
			t.Error("an internal error's text reached the client")
		}
	}
	if a := Explain(&LockedOutError{RetryAfter: 1500 * 1e6}); a.RetryAfter.Seconds() != 2 || !strings.Contains(a.Message, "2 seconds") {
		t.Errorf("retry rounding: %+v", a)
	}
}
