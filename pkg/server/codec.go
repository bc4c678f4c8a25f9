package server

import (
	"bytes"
	"encoding/json"
	"fmt"

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
		return invalidJSON(err)
	}
	return nil
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
