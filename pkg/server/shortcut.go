package server

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"

	"connectrpc.com/connect"
	"google.golang.org/genproto/googleapis/api/annotations"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
)

// REST shortcuts.
//
// vanguard serves the REST API by transcoding: it parses the REST request,
// calls the Connect handler in binary proto, decodes its answer and encodes
// it again as JSON. For the simplest REST reads — a GET whose every request
// field is an integer bound in the path, answered with the whole response
// message, like `GET /house/{id}` — that round is most of the request's
// CPU (docs/scaling.md). A shortcut serves such a route by a Connect call of
// its own on the same handler, in the contract's JSON (restCodec): the same
// interceptors run (access log, tracing, metrics, authentication,
// validation), the handler sets the same headers, Connect's errors have the
// HTTP statuses vanguard gives them and withErrorBody turns them into the
// API.md body as for any REST error. Whatever does not look exactly like
// the simple case — another method, a query string, a body, a value that is
// not a canonical decimal in range, an RPC protocol's headers — goes to
// vanguard, so its answers, errors included, stay those of the transcoder.

// restCodecName is the Connect codec of the shortcuts; the content type
// application/x-homes-rest-json never leaves the process.
const restCodecName = "x-homes-rest-json"

// restCodec is the contract's REST JSON as a Connect codec: snake_case, zero
// values written out, compact (fastjson.go; protojson for the rest),
// unknown fields ignored.
type restCodec struct{}

var _ connect.Codec = restCodec{}

func (restCodec) Name() string { return restCodecName }

func (c restCodec) Marshal(v any) ([]byte, error) { return c.MarshalAppend(nil, v) }

// MarshalAppend lets Connect marshal into its pooled buffers.
func (restCodec) MarshalAppend(base []byte, v any) ([]byte, error) {
	msg, ok := v.(proto.Message)
	if !ok {
		return nil, fmt.Errorf("%T is not a proto.Message", v)
	}
	if out, ok := appendFastJSON(base, msg.ProtoReflect()); ok {
		return out, nil
	}
	opts := protojson.MarshalOptions{EmitUnpopulated: true, UseProtoNames: true}
	return compact(opts.Marshal(msg))(base)
}

func (restCodec) Unmarshal(data []byte, v any) error {
	msg, ok := v.(proto.Message)
	if !ok {
		return fmt.Errorf("%T is not a proto.Message", v)
	}
	return protojson.UnmarshalOptions{DiscardUnknown: true}.Unmarshal(data, msg)
}

// shortcut serves one simple REST GET rule by a Connect call.
type shortcut struct {
	pattern   string // for http.ServeMux: "GET /house/{id}"
	procedure string // "/homes.home.v1.HomeService/GetHouseFlats"
	vars      []pathVar
	handler   http.Handler // the service's Connect handler
	fallback  http.Handler // the transcoder
}

// pathVar is a path variable and the request field it sets.
type pathVar struct {
	name   string // the wildcard's name, the field's
	key    string // `"name":` of the request JSON
	bits   int    // 32 or 64
	signed bool
}

// shortcutsOf finds the simple REST GET rules of a service.
func shortcutsOf(s Service, fallback http.Handler) []*shortcut {
	d, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName(s.Name))
	if err != nil {
		return nil
	}
	sd, ok := d.(protoreflect.ServiceDescriptor)
	if !ok {
		return nil
	}
	var out []*shortcut
	methods := sd.Methods()
	for i := 0; i < methods.Len(); i++ {
		md := methods.Get(i)
		if md.IsStreamingClient() || md.IsStreamingServer() {
			continue
		}
		rule, ok := proto.GetExtension(md.Options(), annotations.E_Http).(*annotations.HttpRule)
		if !ok || rule == nil || rule.GetGet() == "" || rule.GetBody() != "" || rule.GetResponseBody() != "" {
			continue
		}
		pattern, vars, ok := simpleTemplate(rule.GetGet(), md.Input())
		if !ok {
			continue
		}
		out = append(out, &shortcut{
			pattern:   "GET " + pattern,
			procedure: "/" + string(sd.FullName()) + "/" + string(md.Name()),
			vars:      vars,
			handler:   s.Handler,
			fallback:  fallback,
		})
	}
	return out
}

// simpleTemplate turns a path template made of literal segments and
// {field} variables into a ServeMux pattern, when the variables are
// integer fields and together every field of the request.
func simpleTemplate(tmpl string, in protoreflect.MessageDescriptor) (string, []pathVar, bool) {
	if !strings.HasPrefix(tmpl, "/") {
		return "", nil, false
	}
	var vars []pathVar
	for _, seg := range strings.Split(tmpl[1:], "/") {
		if seg == "" {
			return "", nil, false
		}
		if !strings.HasPrefix(seg, "{") {
			if strings.ContainsAny(seg, "{}*:=%") {
				return "", nil, false
			}
			continue
		}
		name, ok := strings.CutSuffix(strings.TrimPrefix(seg, "{"), "}")
		if !ok || name == "" || strings.ContainsAny(name, ".=*{}") {
			return "", nil, false
		}
		fd := in.Fields().ByName(protoreflect.Name(name))
		if fd == nil || fd.IsList() || fd.IsMap() || fd.ContainingOneof() != nil {
			return "", nil, false
		}
		v := pathVar{name: name, key: strconv.Quote(fd.JSONName()) + ":"}
		switch fd.Kind() {
		case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind:
			v.bits, v.signed = 32, true
		case protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
			v.bits, v.signed = 64, true
		case protoreflect.Uint32Kind, protoreflect.Fixed32Kind:
			v.bits = 32
		case protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
			v.bits = 64
		default:
			return "", nil, false
		}
		vars = append(vars, v)
	}
	if len(vars) == 0 || len(vars) != in.Fields().Len() {
		return "", nil, false
	}
	return tmpl, vars, true
}

// canonicalInt reports whether s is an integer in its shortest decimal
// form that fits v: "0", "17", "-3"; not "+1", "007", "1e3" or " 1".
func (v pathVar) canonicalInt(s string) bool {
	digits := s
	if v.signed {
		digits = strings.TrimPrefix(s, "-")
	}
	if digits == "" || len(digits) > 20 || (digits[0] == '0' && len(digits) > 1) || (digits == "0" && len(s) > 1) {
		return false
	}
	for i := 0; i < len(digits); i++ {
		if digits[i] < '0' || digits[i] > '9' {
			return false
		}
	}
	var err error
	if v.signed {
		_, err = strconv.ParseInt(s, 10, v.bits)
	} else {
		_, err = strconv.ParseUint(s, 10, v.bits)
	}
	return err == nil
}

func (sc *shortcut) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, ok := sc.requestJSON(r)
	if !ok {
		sc.fallback.ServeHTTP(w, r)
		return
	}
	call := r.Clone(r.Context())
	call.Method = http.MethodPost
	call.URL = &url.URL{Path: sc.procedure}
	call.RequestURI = sc.procedure
	call.Pattern = ""
	call.Header.Set("Content-Type", "application/"+restCodecName)
	call.Header.Set("Connect-Protocol-Version", "1")
	call.Header.Del("Connect-Timeout-Ms")
	call.Body = io.NopCloser(bytes.NewReader(body))
	call.ContentLength = int64(len(body))
	sw := &shortcutWriter{ResponseWriter: w, buf: shortcutBuffers.Get().(*bytes.Buffer)}
	defer sw.release()
	sc.handler.ServeHTTP(sw, call)
	sw.finish()
}

// requestJSON is the request message of r as JSON, ok false when r is not
// the simple case (then vanguard answers).
func (sc *shortcut) requestJSON(r *http.Request) ([]byte, bool) {
	if r.Method != http.MethodGet || r.URL.RawQuery != "" || r.URL.ForceQuery || r.URL.RawPath != "" ||
		r.ContentLength != 0 || isRPC(r) {
		return nil, false
	}
	body := make([]byte, 0, 32)
	body = append(body, '{')
	for i, v := range sc.vars {
		s := r.PathValue(v.name)
		if !v.canonicalInt(s) {
			return nil, false
		}
		if i > 0 {
			body = append(body, ',')
		}
		body = append(body, v.key...)
		body = append(body, s...)
	}
	return append(body, '}'), true
}

// shortcutWriter holds the Connect answer (unary: one message, bounded by
// the handler's limits) and sends it as vanguard does: the REST content
// type, a Content-Length, and headers and body in one write.
type shortcutWriter struct {
	http.ResponseWriter
	status int
	buf    *bytes.Buffer
}

var shortcutBuffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

func (s *shortcutWriter) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
}

func (s *shortcutWriter) Write(p []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.buf.Write(p)
}

// Flush does nothing: the answer goes out whole in finish.
func (s *shortcutWriter) Flush() {}

func (s *shortcutWriter) finish() {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	h := s.Header()
	if h.Get("Content-Type") == "application/"+restCodecName {
		h.Set("Content-Type", "application/json")
	}
	if s.status != http.StatusNotModified && s.status != http.StatusNoContent {
		h.Set("Content-Length", strconv.Itoa(s.buf.Len()))
	}
	s.ResponseWriter.WriteHeader(s.status)
	if s.buf.Len() > 0 {
		_, _ = s.ResponseWriter.Write(s.buf.Bytes())
	}
}

func (s *shortcutWriter) release() {
	if s.buf.Cap() <= 1<<20 { // keep the pool's buffers modest
		s.buf.Reset()
		shortcutBuffers.Put(s.buf)
	}
	s.buf = nil
}

// handleShortcut registers sc on mux unless its pattern clashes with a
// route already there (that route wins).
func handleShortcut(mux *http.ServeMux, sc *shortcut) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = errors.New(fmt.Sprint(p))
		}
	}()
	mux.Handle(sc.pattern, sc)
	return nil
}
