package server

import (
	"strconv"
	"sync"
	"unicode/utf8"

	"google.golang.org/protobuf/reflect/protoreflect"
)

// The contract's JSON (protojson with UseProtoNames and EmitUnpopulated,
// compacted) of plain messages, written directly. protojson is general and
// slow: on a house listing it was a fifth of the server's CPU, and the
// compaction after it another tenth (docs/scaling.md). appendFastJSON
// handles the messages made only of what the API's responses use — proto3
// fields of integer, bool and string kinds, repeated or not, and nested
// messages of the same kind — and writes exactly the bytes protojson +
// json.Compact would (TestFastJSONMatchesProtojson). Anything else (enums,
// floats, bytes, maps, oneofs, optional fields, well-known types such as
// Timestamp or wrappers) reports ok false and the caller uses protojson.

// fastShape is what appendFastJSON knows of a message type.
type fastShape struct {
	ok     bool
	fields []fastField
}

type fastField struct {
	fd    protoreflect.FieldDescriptor
	kind  protoreflect.Kind
	list  bool
	key   string     // `"name":`, with a leading comma after the first field
	child *fastShape // of a message field
}

// fastShapes is keyed by the descriptor itself, not its name: a shape holds
// field descriptors, which only fit the message descriptor they came from
// (two descriptors of one name exist with dynamic messages, as in tests).
var fastShapes sync.Map // protoreflect.MessageDescriptor → *fastShape

// shapeOf says whether md is a plain message and how to write its fields.
func shapeOf(md protoreflect.MessageDescriptor) *fastShape {
	if s, ok := fastShapes.Load(md); ok {
		return s.(*fastShape)
	}
	s := buildShape(md, map[protoreflect.FullName]*fastShape{})
	fastShapes.Store(md, s)
	return s
}

// buildShape builds the shape of md and of the messages in it; memo ends
// cycles (a message that holds itself gets its own, finished, shape).
func buildShape(md protoreflect.MessageDescriptor, memo map[protoreflect.FullName]*fastShape) *fastShape {
	if s, ok := memo[md.FullName()]; ok {
		return s
	}
	s := &fastShape{}
	memo[md.FullName()] = s
	if !plainMessage(md, map[protoreflect.FullName]bool{}) {
		return s
	}
	fds := md.Fields()
	for i := 0; i < fds.Len(); i++ {
		fd := fds.Get(i)
		f := fastField{fd: fd, kind: fd.Kind(), list: fd.IsList(), key: strconv.Quote(fd.TextName()) + ":"}
		if i > 0 {
			f.key = "," + f.key
		}
		if f.kind == protoreflect.MessageKind {
			f.child = buildShape(fd.Message(), memo)
		}
		s.fields = append(s.fields, f)
	}
	s.ok = true
	return s
}

// plainMessage reports whether every field of md, transitively, is of a
// kind appendFastJSON writes as protojson does.
func plainMessage(md protoreflect.MessageDescriptor, visiting map[protoreflect.FullName]bool) bool {
	if visiting[md.FullName()] {
		return true // a cycle: decided by the outer call
	}
	if md.Syntax() != protoreflect.Proto3 || md.ParentFile().Package() == "google.protobuf" ||
		md.ExtensionRanges().Len() > 0 || md.Oneofs().Len() > 0 {
		return false
	}
	visiting[md.FullName()] = true
	defer delete(visiting, md.FullName())
	fds := md.Fields()
	for i := 0; i < fds.Len(); i++ {
		fd := fds.Get(i)
		if fd.IsMap() || fd.ContainingOneof() != nil || fd.IsExtension() {
			return false
		}
		switch fd.Kind() {
		case protoreflect.BoolKind, protoreflect.StringKind,
			protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind,
			protoreflect.Uint32Kind, protoreflect.Fixed32Kind,
			protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind,
			protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		case protoreflect.MessageKind:
			if !plainMessage(fd.Message(), visiting) {
				return false
			}
		default: // enums, floats, bytes, groups
			return false
		}
	}
	return true
}

// appendFastJSON appends the contract's JSON of m to b; ok false (and b
// unchanged in meaning) when m is not a plain message or holds a string
// that is not valid UTF-8 (protojson's error is then the answer).
func appendFastJSON(b []byte, m protoreflect.Message) ([]byte, bool) {
	s := shapeOf(m.Descriptor())
	if !s.ok {
		return b, false
	}
	return appendMessage(b, m, s)
}

func appendMessage(b []byte, m protoreflect.Message, s *fastShape) ([]byte, bool) {
	b = append(b, '{')
	for i := range s.fields {
		f := &s.fields[i]
		b = append(b, f.key...)
		var ok bool
		switch {
		case f.list:
			list := m.Get(f.fd).List()
			b = append(b, '[')
			for i := 0; i < list.Len(); i++ {
				if i > 0 {
					b = append(b, ',')
				}
				if b, ok = appendValue(b, f, list.Get(i)); !ok {
					return b, false
				}
			}
			b = append(b, ']')
		case f.kind == protoreflect.MessageKind && !m.Has(f.fd):
			b = append(b, "null"...)
		default:
			if b, ok = appendValue(b, f, m.Get(f.fd)); !ok {
				return b, false
			}
		}
	}
	return append(b, '}'), true
}

func appendValue(b []byte, f *fastField, v protoreflect.Value) ([]byte, bool) {
	switch f.kind {
	case protoreflect.BoolKind:
		return strconv.AppendBool(b, v.Bool()), true
	case protoreflect.StringKind:
		return appendJSONString(b, v.String())
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind:
		return strconv.AppendInt(b, v.Int(), 10), true
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind:
		return strconv.AppendUint(b, v.Uint(), 10), true
	case protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		b = append(b, '"')
		return append(strconv.AppendInt(b, v.Int(), 10), '"'), true
	case protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		b = append(b, '"')
		return append(strconv.AppendUint(b, v.Uint(), 10), '"'), true
	case protoreflect.MessageKind:
		return appendMessage(b, v.Message(), f.child)
	}
	return b, false
}

// appendJSONString quotes s as protojson does: only '"', '\\' and control
// characters are escaped (\b \f \n \r \t, else \u00XX); invalid UTF-8 is
// refused.
func appendJSONString(b []byte, s string) ([]byte, bool) {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= utf8.RuneSelf {
			r, n := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && n == 1 {
				return b, false
			}
			i += n
			continue
		}
		if c >= ' ' && c != '"' && c != '\\' {
			i++
			continue
		}
		b = append(b, s[start:i]...)
		switch c {
		case '"', '\\':
			b = append(b, '\\', c)
		case '\b':
			b = append(b, '\\', 'b')
		case '\f':
			b = append(b, '\\', 'f')
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		case '\t':
			b = append(b, '\\', 't')
		default:
			b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		}
		i++
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"'), true
}

const hexDigits = "0123456789abcdef"
