package server

import (
	"math"
	"math/rand/v2"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"
	"google.golang.org/protobuf/types/known/timestamppb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	authv1 "github.com/homeservices/homes/gen/homes/auth/v1"
	homev1 "github.com/homeservices/homes/gen/homes/home/v1"
)

// reference is what the REST codec wrote before fastjson: protojson,
// compacted.
func reference(t *testing.T, m proto.Message) (string, error) {
	t.Helper()
	out, err := compact(protojson.MarshalOptions{EmitUnpopulated: true, UseProtoNames: true}.Marshal(m))(nil)
	return string(out), err
}

func checkSame(t *testing.T, m proto.Message) {
	t.Helper()
	want, err := reference(t, m)
	got, ok := appendFastJSON([]byte("prefix"), m.ProtoReflect())
	if err != nil {
		if ok {
			t.Fatalf("protojson fails (%v) but fastjson wrote %s", err, got)
		}
		return
	}
	if !ok {
		t.Fatalf("fastjson refused %v", m)
	}
	if string(got) != "prefix"+want {
		t.Fatalf("fastjson\n%s\nprotojson\n%s", got[len("prefix"):], want)
	}
}

var tricky = []string{
	"", "approved", "on moderation", `quo"te`, `back\slash`, "tab\tnew\nline\r", "\x00\x01\x1f\x7f",
	"\b\f", "кириллица", "emoji 🏠", "</script>&amp;", "\u2028\u2029", "bad \xff utf8",
}

func TestFastJSONMatchesProtojson(t *testing.T) {
	t.Parallel()
	checkSame(t, &homev1.GetHouseFlatsResponse{})
	checkSame(t, &homev1.GetHouseFlatsResponse{Flats: []*homev1.Flat{}})
	checkSame(t, &homev1.Flat{})
	checkSame(t, &homev1.CreateFlatResponse{}) // unset message: null
	checkSame(t, &authv1.LoginResponse{Token: "t", RefreshToken: "r", ExpiresIn: 900})
	checkSame(t, &authv1.LogoutResponse{})
	for _, s := range tricky {
		checkSame(t, &homev1.Flat{Id: -1, HouseId: math.MaxInt32, Price: math.MinInt32, Rooms: 0, Status: s, Number: 7})
		checkSame(t, &homev1.CreateFlatResponse{Flat: &homev1.Flat{Status: s}})
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 200 {
		resp := &homev1.GetHouseFlatsResponse{}
		for range r.IntN(50) {
			resp.Flats = append(resp.Flats, &homev1.Flat{
				Id: r.Int32(), HouseId: -r.Int32(), Price: r.Int32(), Rooms: int32(r.IntN(100)),
				Status: tricky[r.IntN(len(tricky)-1)], Number: r.Int32(),
			})
		}
		checkSame(t, resp)
	}
}

// TestFastJSONEveryKind covers the kinds the API does not use yet, on a
// message built at run time.
func TestFastJSONEveryKind(t *testing.T) {
	t.Parallel()
	md := kindsMessage(t)
	r := rand.New(rand.NewPCG(3, 4))
	for i := range 100 {
		m := dynamicpb.NewMessage(md)
		if i > 0 {
			fill(m, r, 2)
		}
		checkSame(t, m)
	}
}

func fill(m protoreflect.Message, r *rand.Rand, depth int) {
	fds := m.Descriptor().Fields()
	for i := 0; i < fds.Len(); i++ {
		fd := fds.Get(i)
		if r.IntN(3) == 0 {
			continue
		}
		if fd.IsList() {
			l := m.Mutable(fd).List()
			for range r.IntN(4) {
				if fd.Kind() == protoreflect.MessageKind {
					if depth > 0 {
						e := l.NewElement()
						fill(e.Message(), r, depth-1)
						l.Append(e)
					}
					continue
				}
				l.Append(value(fd, r))
			}
			continue
		}
		if fd.Kind() == protoreflect.MessageKind {
			if depth > 0 {
				fill(m.Mutable(fd).Message(), r, depth-1)
			}
			continue
		}
		m.Set(fd, value(fd, r))
	}
}

func value(fd protoreflect.FieldDescriptor, r *rand.Rand) protoreflect.Value {
	switch fd.Kind() {
	case protoreflect.BoolKind:
		return protoreflect.ValueOfBool(r.IntN(2) == 0)
	case protoreflect.StringKind:
		return protoreflect.ValueOfString(tricky[r.IntN(len(tricky)-1)])
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind:
		return protoreflect.ValueOfInt32(int32(r.Uint32()))
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind:
		return protoreflect.ValueOfUint32(r.Uint32())
	case protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		return protoreflect.ValueOfInt64(int64(r.Uint64()))
	default:
		return protoreflect.ValueOfUint64(r.Uint64())
	}
}

func kindsMessage(t *testing.T) protoreflect.MessageDescriptor {
	t.Helper()
	kinds := []descriptorpb.FieldDescriptorProto_Type{
		descriptorpb.FieldDescriptorProto_TYPE_BOOL, descriptorpb.FieldDescriptorProto_TYPE_STRING,
		descriptorpb.FieldDescriptorProto_TYPE_INT32, descriptorpb.FieldDescriptorProto_TYPE_SINT32,
		descriptorpb.FieldDescriptorProto_TYPE_SFIXED32, descriptorpb.FieldDescriptorProto_TYPE_UINT32,
		descriptorpb.FieldDescriptorProto_TYPE_FIXED32, descriptorpb.FieldDescriptorProto_TYPE_INT64,
		descriptorpb.FieldDescriptorProto_TYPE_SINT64, descriptorpb.FieldDescriptorProto_TYPE_SFIXED64,
		descriptorpb.FieldDescriptorProto_TYPE_UINT64, descriptorpb.FieldDescriptorProto_TYPE_FIXED64,
	}
	msg := &descriptorpb.DescriptorProto{Name: proto.String("Kinds")}
	n := int32(0)
	add := func(name string, typ descriptorpb.FieldDescriptorProto_Type, label descriptorpb.FieldDescriptorProto_Label, typeName string) {
		n++
		f := &descriptorpb.FieldDescriptorProto{
			Name: proto.String(name), JsonName: proto.String(name), Number: proto.Int32(n), Type: typ.Enum(), Label: label.Enum(),
		}
		if typeName != "" {
			f.TypeName = proto.String(typeName)
		}
		msg.Field = append(msg.Field, f)
	}
	for i, k := range kinds {
		add("single_"+string(rune('a'+i)), k, descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL, "")
		add("many_"+string(rune('a'+i)), k, descriptorpb.FieldDescriptorProto_LABEL_REPEATED, "")
	}
	add("child", descriptorpb.FieldDescriptorProto_TYPE_MESSAGE, descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL, ".fastjsontest.Kinds")
	add("children", descriptorpb.FieldDescriptorProto_TYPE_MESSAGE, descriptorpb.FieldDescriptorProto_LABEL_REPEATED, ".fastjsontest.Kinds")
	fd, err := protodesc.NewFile(&descriptorpb.FileDescriptorProto{
		Name: proto.String("fastjsontest.proto"), Package: proto.String("fastjsontest"), Syntax: proto.String("proto3"),
		MessageType: []*descriptorpb.DescriptorProto{msg},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return fd.Messages().Get(0)
}

// TestFastJSONRefuses: what fastjson does not write goes to protojson.
func TestFastJSONRefuses(t *testing.T) {
	t.Parallel()
	for _, m := range []proto.Message{
		&homev1.House{},                          // Timestamp and StringValue fields
		&homev1.CreateHouseResponse{},            // a House inside
		timestamppb.Now(), wrapperspb.String(""), // well-known types
	} {
		if out, ok := appendFastJSON(nil, m.ProtoReflect()); ok {
			t.Errorf("%T: fastjson wrote %s", m, out)
		}
	}
	// The codecs still write them as protojson did.
	h := &homev1.House{Id: 1, Address: "a", CreatedAt: timestamppb.New(timestamppb.Now().AsTime())}
	want, err := reference(t, h)
	if err != nil {
		t.Fatal(err)
	}
	got, err := restCodec{}.Marshal(h)
	if err != nil || string(got) != want {
		t.Fatalf("restCodec: %s, %v; want %s", got, err, want)
	}
}
