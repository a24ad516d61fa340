package config

import (
	"errors"
	"reflect"
	"regexp"
	"strings"

	"github.com/go-viper/mapstructure/v2"
)

// yamlMessage describes a YAML error by line number and a fixed phrase.
// YAML parser messages quote parts of the document (anchors, tags, keys,
// scalars) and a password could be among them, so the parser's own text is
// never passed on.
func yamlMessage(err error) string {
	msg := err.Error()
	out := "invalid YAML"
	if m := yamlLineRe.FindStringSubmatch(msg); m != nil {
		out += " at line " + m[1]
	}
	// parser phrase -> what cordon says about it
	phrases := [][2]string{
		{"already defined", "a key is defined twice"},
		{"cannot unmarshal", "the document must be a mapping of keys"},
		{"unknown anchor", "unknown anchor"},
		{"excessive aliasing", "too many aliases"},
		{"mapping values are not allowed", "unexpected ':' (quote values containing ': ')"},
		{"could not find expected ':'", "expected 'key: value'"},
		{"did not find expected key", "bad indentation or a missing key"},
		{"found a tab character", "tabs are not allowed for indentation"},
		{"found character that cannot start any token", "a value starts with a reserved character (quote it)"},
		{"found unknown escape character", "unknown escape sequence in a double-quoted string"},
		{"did not find expected", "unterminated list, mapping or string"},
		{"found unexpected end of stream", "unterminated string or block"},
	}
	for _, k := range phrases {
		if strings.Contains(msg, k[0]) {
			return out + ": " + k[1]
		}
	}
	return out
}

var yamlLineRe = regexp.MustCompile(`line ([0-9]+)`)

func stringToICEServerHook(from, to reflect.Type, data any) (any, error) {
	if from.Kind() != reflect.String || to != reflect.TypeFor[ICEServer]() {
		return data, nil
	}
	return ICEServer{URLs: []string{strings.TrimSpace(data.(string))}}, nil
}

// stringToSliceHook splits comma-separated strings (environment values) into
// lists, trimming blanks. "" is an empty list.
func stringToSliceHook(from, to reflect.Type, data any) (any, error) {
	if from.Kind() != reflect.String || to.Kind() != reflect.Slice {
		return data, nil
	}
	raw := strings.TrimSpace(data.(string))
	out := []string{}
	if raw == "" {
		return out, nil
	}
	for _, s := range strings.Split(raw, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out, nil
}

// decodeErrors turns mapstructure's error tree into FieldErrors whose
// messages never contain the offending values.
func decodeErrors(err error) FieldErrors {
	var out FieldErrors
	var walk func(error)
	walk = func(e error) {
		if e == nil {
			return
		}
		var de *mapstructure.DecodeError
		if errors.As(e, &de) && isDirect(e, de) {
			out = append(out, fromDecodeError(de)...)
			return
		}
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			for _, sub := range j.Unwrap() {
				walk(sub)
			}
			return
		}
		if u := errors.Unwrap(e); u != nil {
			walk(u)
			return
		}
		out = append(out, FieldError{Field: "config", Msg: "cannot decode"})
	}
	walk(err)
	sortFieldErrors(out)
	return out
}

// isDirect reports whether de is e itself (not buried under a join).
func isDirect(e error, de *mapstructure.DecodeError) bool {
	d, ok := e.(*mapstructure.DecodeError)
	return ok && d == de
}

func fromDecodeError(de *mapstructure.DecodeError) FieldErrors {
	name := de.Name()
	inner := de.Unwrap()
	var pe *mapstructure.ParseError
	var ue *mapstructure.UnconvertibleTypeError
	switch {
	case errors.As(inner, &pe):
		return FieldErrors{{Field: name, Msg: typeMessage(pe.Expected.Type())}}
	case errors.As(inner, &ue):
		return FieldErrors{{Field: name, Msg: typeMessage(ue.Expected.Type())}}
	}
	msg := inner.Error()
	if rest, ok := strings.CutPrefix(msg, "has invalid keys: "); ok {
		var out FieldErrors
		for _, k := range strings.Split(rest, ", ") {
			out = append(out, FieldError{Field: joinPath(name, k), Msg: "unknown key"})
		}
		return out
	}
	if strings.Contains(msg, "expected a map") || strings.Contains(msg, "expected a map or struct") {
		return FieldErrors{{Field: name, Msg: "must be a mapping"}}
	}
	if strings.Contains(msg, "source data must be an array or slice") {
		return FieldErrors{{Field: name, Msg: "must be a list"}}
	}
	// Unknown shape: keep mapstructure's message only if it cannot carry a
	// value; otherwise say something generic.
	return FieldErrors{{Field: name, Msg: "has the wrong type"}}
}

func joinPath(prefix, key string) string {
	if prefix == "" {
		return key
	}
	return prefix + "." + key
}

func typeMessage(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Bool:
		return "must be true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "must be an integer"
	case reflect.String:
		return "must be a string"
	case reflect.Slice:
		return "must be a list"
	case reflect.Struct, reflect.Map:
		return "must be a mapping"
	}
	return "has the wrong type"
}
