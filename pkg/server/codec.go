package server

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"

	"connectrpc.com/connect"
	"connectrpc.com/vanguard"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// jsonCodec is the JSON of the contract: snake_case field names, zero values
// written out (so `"price": 0` and `"flats": []` appear), unknown fields
// ignored. A body that does not parse is the client's fault: it becomes
// invalid_argument (400) rather than vanguard's default internal error.
type jsonCodec struct {
	vanguard.JSONCodec
}

var (
	_ vanguard.RESTCodec   = jsonCodec{}
	_ vanguard.StableCodec = jsonCodec{}
)

func newJSONCodec(res vanguard.TypeResolver) vanguard.Codec {
	return jsonCodec{vanguard.JSONCodec{
		MarshalOptions:   protojson.MarshalOptions{Resolver: res, EmitUnpopulated: true, UseProtoNames: true},
		UnmarshalOptions: protojson.UnmarshalOptions{Resolver: res, DiscardUnknown: true},
	}}
}

// MarshalAppend implements vanguard.Codec. Plain messages (fastjson.go) are
// written directly; for the rest protojson, which adds random spaces on
// purpose, is compacted: the contract's clients get compact JSON.
func (c jsonCodec) MarshalAppend(base []byte, msg proto.Message) ([]byte, error) {
	if out, ok := appendFastJSON(base, msg.ProtoReflect()); ok {
		return out, nil
	}
	return compact(c.JSONCodec.MarshalAppend(nil, msg))(base)
}

// MarshalAppendField implements vanguard.RESTCodec.
func (c jsonCodec) MarshalAppendField(base []byte, msg proto.Message, field protoreflect.FieldDescriptor) ([]byte, error) {
	if field.Message() != nil && field.Cardinality() != protoreflect.Repeated {
		// What vanguard.JSONCodec does for a singular message field: the
		// whole of that message.
		return c.MarshalAppend(base, msg.ProtoReflect().Get(field).Message().Interface())
	}
	return compact(c.JSONCodec.MarshalAppendField(nil, msg, field))(base)
}

func compact(data []byte, err error) func(base []byte) ([]byte, error) {
	return func(base []byte) ([]byte, error) {
		if err != nil {
			return nil, err
		}
		buf := bytes.NewBuffer(base)
		if err := json.Compact(buf, data); err != nil {
			return nil, fmt.Errorf("compact JSON: %w", err)
		}
		return buf.Bytes(), nil
	}
}

// Unmarshal implements vanguard.Codec.
func (c jsonCodec) Unmarshal(data []byte, msg proto.Message) error {
	if err := c.JSONCodec.Unmarshal(data, msg); err != nil {
		if ferr := c.fieldError(data, msg); ferr != nil {
			return ferr
		}
		return invalidJSON(err)
	}
	return nil
}

// fieldError finds the field of a JSON object body whose value does not fit
// it, and says so with the contract's name ("invalid house_id: must be a
// whole number"): protojson names it in camelCase, or, inside a wrapper
// such as developer, not at all. It is only called on a body that failed,
// and returns nil when the body is not an object or no single field is at
// fault.
func (c jsonCodec) fieldError(data []byte, msg proto.Message) error {
	var top map[string]json.RawMessage
	if json.Unmarshal(data, &top) != nil {
		return nil
	}
	keys := make([]string, 0, len(top))
	for k := range top {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	fields := msg.ProtoReflect().Descriptor().Fields()
	for _, key := range keys {
		fd := fields.ByName(protoreflect.Name(key))
		if fd == nil {
			fd = fields.ByJSONName(key)
		}
		if fd == nil {
			continue
		}
		probe, err := json.Marshal(map[string]json.RawMessage{key: top[key]})
		if err != nil {
			continue
		}
		if c.JSONCodec.Unmarshal(probe, msg.ProtoReflect().New().Interface()) != nil {
			return connect.NewError(connect.CodeInvalidArgument,
				fmt.Errorf("invalid %s: must be %s", fd.Name(), jsonKind(fd)))
		}
	}
	return nil
}

// jsonKind says what JSON a field takes, for error messages.
func jsonKind(fd protoreflect.FieldDescriptor) string {
	what := "a value of its type"
	switch fd.Kind() {
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind,
		protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind,
		protoreflect.Uint32Kind, protoreflect.Fixed32Kind, protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		what = "a whole number in range"
	case protoreflect.StringKind:
		what = "a string"
	case protoreflect.BoolKind:
		what = "true or false"
	case protoreflect.MessageKind:
		if fd.Message().FullName() == "google.protobuf.StringValue" {
			what = "a string or null"
		}
	}
	if fd.IsList() {
		return "an array of " + what
	}
	return what
}

// UnmarshalField implements vanguard.RESTCodec.
func (c jsonCodec) UnmarshalField(data []byte, msg proto.Message, field protoreflect.FieldDescriptor) error {
	if err := c.JSONCodec.UnmarshalField(data, msg, field); err != nil {
		return invalidJSON(err)
	}
	return nil
}

func invalidJSON(err error) error {
	return connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("invalid JSON body: %w", err))
}
