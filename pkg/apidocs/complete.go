package apidocs

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"buf.build/gen/go/bufbuild/protovalidate/protocolbuffers/go/buf/validate"
	"github.com/getkin/kin-openapi/openapi3"
	"go.yaml.in/yaml/v3"
	"google.golang.org/genproto/googleapis/api/annotations"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	authv1 "github.com/homeservices/homes/gen/homes/auth/v1"
	homev1 "github.com/homeservices/homes/gen/homes/home/v1"
	"github.com/homeservices/homes/gen/homes/home/v1/homev1connect"
)

// Complete fills in what protoc-gen-openapi leaves out of the document it
// generates from the protos, reading the same proto descriptors (compiled
// into the generated Go packages) so that the two cannot drift apart:
//
//   - the 200 response of a method whose google.api.http rule has a
//     response_body is that field's schema (e.g. House), not the wrapper
//     message: the REST API answers with the bare object;
//   - every operation documents its error statuses with the Error schema,
//     the body of every REST error (API.md);
//   - the buf.validate field rules become schema limits: minLength,
//     maxLength, minimum, maximum, enum, format (email, uuid); byte limits
//     and CEL rules, which JSON Schema cannot say, go into the description;
//   - the JSON shape of the answers: wrapper fields (developer) are
//     nullable, a flat's status is an enum;
//   - the bearer token: a security scheme (components.securitySchemes,
//     bearerAuth) and, on every operation of a service that needs a token
//     (tokenServices), the requirement of it, so that Swagger UI offers
//     Authorize and sends the token.
//
// It is deterministic: the same input gives the same document.
func Complete(doc *openapi3.T) error {
	if doc.Components == nil {
		doc.Components = &openapi3.Components{}
	}
	if doc.Components.Schemas == nil {
		doc.Components.Schemas = openapi3.Schemas{}
	}
	errBody := errorBodySchema()
	doc.Components.Schemas[errorSchema] = openapi3.NewSchemaRef("", errBody)
	if doc.Components.SecuritySchemes == nil {
		doc.Components.SecuritySchemes = openapi3.SecuritySchemes{}
	}
	doc.Components.SecuritySchemes[bearerScheme] = &openapi3.SecuritySchemeRef{Value: bearerSecurityScheme()}
	var dropped []string
	for _, fd := range apiFiles {
		for i := range fd.Services().Len() {
			sd := fd.Services().Get(i)
			methods := sd.Methods()
			for j := range methods.Len() {
				wrapper, err := completeMethod(doc, methods.Get(j), errBody, tokenServices[string(sd.FullName())])
				if err != nil {
					return err
				}
				if wrapper != "" {
					dropped = append(dropped, wrapper)
				}
			}
		}
	}
	for _, name := range slices.Sorted(maps.Keys(doc.Components.Schemas)) {
		// Schemas are named by the messages' short names.
		if md := findMessage(name); md != nil {
			completeMessage(doc.Components.Schemas[name].Value, md)
		}
	}
	completeShape(doc.Components.Schemas)
	// Wrappers no operation returns any more are dropped, unless still used.
	for _, name := range dropped {
		if !referenced(doc, name) {
			delete(doc.Components.Schemas, name)
		}
	}
	return nil
}

// apiFiles are the proto files whose services the REST API maps.
var apiFiles = []protoreflect.FileDescriptor{authv1.File_homes_auth_v1_auth_proto, homev1.File_homes_home_v1_home_proto}

// findMessage looks a message up by short name in the API's proto files.
func findMessage(name string) protoreflect.MessageDescriptor {
	for _, fd := range apiFiles {
		if md := fd.Messages().ByName(protoreflect.Name(name)); md != nil {
			return md
		}
	}
	return nil
}

// bearerScheme names the security scheme of the access token.
const bearerScheme = "bearerAuth"

// tokenServices are the services whose every RPC needs an access token: the
// app serves the home service behind authn.NewRequiredInterceptor, which
// refuses a call without one, and the auth service, which hands tokens out
// (dummy login, register, log in, refresh, log out), without it.
var tokenServices = map[string]bool{homev1connect.HomeServiceName: true}

// bearerSecurityScheme is API.md's "Authorization: Bearer <token>": the JWT
// that /dummyLogin, /login and /refresh answer with.
func bearerSecurityScheme() *openapi3.SecurityScheme {
	return openapi3.NewJWTSecurityScheme().WithDescription(
		"The access token (`token`) that /dummyLogin, /login or /refresh answers with, " +
			"sent as `Authorization: Bearer <token>`. An operation for moderators only " +
			"answers a client's token with 403.")
}

// errorSchema names the body of every REST error.
const errorSchema = "Error"

func errorBodySchema() *openapi3.Schema {
	s := openapi3.NewObjectSchema()
	s.Description = "The body of every error answer of the REST API. Every 5xx and 429 answer also carries Retry-After."
	s.Properties = openapi3.Schemas{
		"message":    described(openapi3.NewStringSchema(), "What went wrong, for people."),
		"request_id": described(openapi3.NewStringSchema(), "The request's id, also in the X-Request-Id header."),
		"code":       described(openapi3.NewInt32Schema(), "The HTTP status code."),
	}
	s.Required = []string{"message", "request_id", "code"}
	return s
}

func described(s *openapi3.Schema, description string) *openapi3.SchemaRef {
	s.Description = description
	return openapi3.NewSchemaRef("", s)
}

// errorStatuses says which error statuses each method answers with, after
// API.md's rules (and the services' code); every method can also answer
// 429 and 5xx.
var errorStatuses = map[string][]int{
	"DummyLogin":    {400, 404},
	"Register":      {400, 409},
	"Login":         {400, 401, 404},
	"Refresh":       {400, 401},
	"Logout":        {400, 401},
	"CreateHouse":   {400, 401, 403},
	"GetHouseFlats": {400, 401, 404},
	"Subscribe":     {400, 401, 404},
	"CreateFlat":    {400, 401, 404},
	"UpdateFlat":    {400, 401, 403, 404, 409},
}

// errorResponses are the shared error answers, by status, in
// components/responses.
var errorResponses = map[string]struct{ name, description string }{
	"400": {"BadRequest", "Invalid input."},
	"401": {"Unauthorized", "Missing, invalid or expired token, or wrong credentials."},
	"403": {"Forbidden", "Valid token with the wrong role."},
	"404": {"NotFound", "Unknown house, flat or user."},
	"409": {"Conflict", "State conflict."},
	"429": {"TooManyRequests", "Rate limited; retry after Retry-After seconds."},
	"5XX": {"ServerError", "Server side failure; retry after Retry-After seconds."},
}

// completeMethod fixes the operation of md's REST mapping, requiring the
// bearer token when needsToken, and returns the name of the wrapper schema
// it no longer answers with, if any.
func completeMethod(doc *openapi3.T, md protoreflect.MethodDescriptor, errBody *openapi3.Schema, needsToken bool) (string, error) {
	rule, _ := proto.GetExtension(md.Options(), annotations.E_Http).(*annotations.HttpRule)
	if rule == nil {
		return "", nil
	}
	method, path := httpPattern(rule)
	item := doc.Paths.Value(path)
	if item == nil || item.GetOperation(method) == nil {
		return "", fmt.Errorf("complete %s: no operation %s %s in the generated document", md.FullName(), method, path)
	}
	op := item.GetOperation(method)
	statuses, ok := errorStatuses[string(md.Name())]
	if !ok {
		return "", fmt.Errorf("complete %s: no error statuses listed for it", md.FullName())
	}
	for _, status := range append(slices.Clone(statuses), http.StatusTooManyRequests) {
		op.Responses.Set(strconv.Itoa(status), errorResponseRef(doc, errBody, strconv.Itoa(status)))
	}
	op.Responses.Set("5XX", errorResponseRef(doc, errBody, "5XX"))
	if needsToken {
		op.Security = openapi3.NewSecurityRequirements().With(openapi3.NewSecurityRequirement().Authenticate(bearerScheme))
	}
	// Path and query parameters are fields of the request too.
	for _, p := range op.Parameters {
		if p.Value == nil || p.Value.Schema == nil || p.Value.Schema.Value == nil {
			continue
		}
		fd := md.Input().Fields().ByName(protoreflect.Name(p.Value.Name))
		if fd == nil {
			continue
		}
		if rules, _ := proto.GetExtension(fd.Options(), validate.E_Field).(*validate.FieldRules); rules != nil {
			applyRules(p.Value.Schema.Value, rules)
		}
	}

	if rule.GetResponseBody() == "" {
		return "", nil
	}
	field := md.Output().Fields().ByName(protoreflect.Name(rule.GetResponseBody()))
	if field == nil || field.Message() == nil {
		return "", fmt.Errorf("complete %s: response_body %q is not a message field", md.FullName(), rule.GetResponseBody())
	}
	target := string(field.Message().Name())
	targetSchema := doc.Components.Schemas[target]
	if targetSchema == nil {
		return "", fmt.Errorf("complete %s: no schema %s", md.FullName(), target)
	}
	ok200 := op.Responses.Value("200")
	if ok200 == nil || ok200.Value == nil || ok200.Value.Content.Get("application/json") == nil {
		return "", fmt.Errorf("complete %s: no JSON 200 response", md.FullName())
	}
	ok200.Value.Content.Get("application/json").Schema = openapi3.NewSchemaRef("#/components/schemas/"+target, targetSchema.Value)
	return string(md.Output().Name()), nil
}

// errorResponseRef points at the shared error answer of status, adding it
// to components/responses on first use.
func errorResponseRef(doc *openapi3.T, errBody *openapi3.Schema, status string) *openapi3.ResponseRef {
	e := errorResponses[status]
	if doc.Components.Responses == nil {
		doc.Components.Responses = openapi3.ResponseBodies{}
	}
	shared := doc.Components.Responses[e.name]
	if shared == nil {
		r := openapi3.NewResponse().WithDescription(e.description)
		r.Content = openapi3.NewContentWithJSONSchemaRef(openapi3.NewSchemaRef("#/components/schemas/"+errorSchema, errBody))
		r.Headers = openapi3.Headers{
			"X-Request-Id": header("The request's id (echoed from the request when it had one).", openapi3.NewStringSchema()),
		}
		if status == "429" || status == "5XX" {
			r.Headers["Retry-After"] = header("Seconds to wait before trying again.", openapi3.NewIntegerSchema())
		}
		shared = &openapi3.ResponseRef{Value: r}
		doc.Components.Responses[e.name] = shared
	}
	return &openapi3.ResponseRef{Ref: "#/components/responses/" + e.name, Value: shared.Value}
}

func header(description string, schema *openapi3.Schema) *openapi3.HeaderRef {
	return &openapi3.HeaderRef{Value: &openapi3.Header{Parameter: openapi3.Parameter{
		Description: description,
		Schema:      openapi3.NewSchemaRef("", schema),
	}}}
}

// httpPattern is the method and path of a google.api.http rule.
func httpPattern(rule *annotations.HttpRule) (method, path string) {
	switch p := rule.GetPattern().(type) {
	case *annotations.HttpRule_Get:
		return http.MethodGet, p.Get
	case *annotations.HttpRule_Post:
		return http.MethodPost, p.Post
	case *annotations.HttpRule_Put:
		return http.MethodPut, p.Put
	case *annotations.HttpRule_Patch:
		return http.MethodPatch, p.Patch
	case *annotations.HttpRule_Delete:
		return http.MethodDelete, p.Delete
	case *annotations.HttpRule_Custom:
		return p.Custom.GetKind(), p.Custom.GetPath()
	}
	return "", ""
}

// completeMessage adds the validation limits of md's fields to its schema.
func completeMessage(schema *openapi3.Schema, md protoreflect.MessageDescriptor) {
	if schema == nil {
		return
	}
	fields := md.Fields()
	for i := range fields.Len() {
		fd := fields.Get(i)
		prop := schema.Properties[string(fd.Name())]
		if prop == nil || prop.Value == nil {
			continue
		}
		if fd.Message() != nil && isWrapper(fd.Message().FullName()) {
			prop.Value.Nullable = true
		}
		rules, _ := proto.GetExtension(fd.Options(), validate.E_Field).(*validate.FieldRules)
		if rules == nil {
			continue
		}
		applyRules(prop.Value, rules)
	}
	oneofs := md.Oneofs()
	for i := range oneofs.Len() {
		od := oneofs.Get(i)
		rules, _ := proto.GetExtension(od.Options(), validate.E_Oneof).(*validate.OneofRules)
		if od.IsSynthetic() || !rules.GetRequired() {
			continue
		}
		var names []string
		for j := range od.Fields().Len() {
			names = append(names, "`"+string(od.Fields().Get(j).Name())+"`")
		}
		schema.Description = addSentence(schema.Description, "Exactly one of "+strings.Join(names, ", ")+" is required.")
	}
}

func isWrapper(name protoreflect.FullName) bool {
	return strings.HasPrefix(string(name), "google.protobuf.") && strings.HasSuffix(string(name), "Value")
}

// applyRules turns buf.validate rules into JSON Schema keywords.
func applyRules(s *openapi3.Schema, rules *validate.FieldRules) {
	if r := rules.GetString(); r != nil {
		if r.HasMinLen() {
			s.MinLength = r.GetMinLen()
		}
		if r.HasMaxLen() {
			s.MaxLength = ptr(r.GetMaxLen())
		}
		if r.HasLen() {
			s.MinLength, s.MaxLength = r.GetLen(), ptr(r.GetLen())
		}
		if r.HasMinBytes() || r.HasMaxBytes() {
			// JSON Schema counts characters; a character takes 1 to 4 bytes
			// of UTF-8, so only the upper bound carries over.
			if r.HasMaxBytes() && (s.MaxLength == nil || *s.MaxLength > r.GetMaxBytes()) {
				s.MaxLength = ptr(r.GetMaxBytes())
			}
			s.Description = addSentence(s.Description, byteLimits(r))
		}
		if len(r.GetIn()) > 0 {
			s.Enum = nil
			for _, v := range r.GetIn() {
				s.Enum = append(s.Enum, v)
			}
		}
		if r.HasPattern() {
			s.Pattern = r.GetPattern()
		}
		switch {
		case r.GetEmail():
			s.Format = "email"
		case r.GetUuid():
			s.Format = "uuid"
		}
	}
	if r := rules.GetInt32(); r != nil {
		switch {
		case r.HasGte():
			s.Min = ptr(float64(r.GetGte()))
		case r.HasGt():
			s.Min, s.ExclusiveMin = ptr(float64(r.GetGt())), openapi3.ExclusiveBound{Bool: ptr(true)}
		}
		switch {
		case r.HasLte():
			s.Max = ptr(float64(r.GetLte()))
		case r.HasLt():
			s.Max, s.ExclusiveMax = ptr(float64(r.GetLt())), openapi3.ExclusiveBound{Bool: ptr(true)}
		}
		if len(r.GetIn()) > 0 {
			s.Enum = nil
			for _, v := range r.GetIn() {
				s.Enum = append(s.Enum, v)
			}
		}
	}
	for _, c := range rules.GetCel() {
		if c.GetMessage() != "" {
			s.Description = addSentence(s.Description, upperFirst(c.GetMessage())+".")
		}
	}
}

func byteLimits(r *validate.StringRules) string {
	switch {
	case r.HasMinBytes() && r.HasMaxBytes():
		return fmt.Sprintf("%d to %d bytes of UTF-8.", r.GetMinBytes(), r.GetMaxBytes())
	case r.HasMinBytes():
		return fmt.Sprintf("At least %d bytes of UTF-8.", r.GetMinBytes())
	default:
		return fmt.Sprintf("At most %d bytes of UTF-8.", r.GetMaxBytes())
	}
}

// completeShape states what the REST answers look like beyond the proto
// types: a flat's status is one of four strings. (int32 fields are JSON
// numbers, as protojson writes them and the generator already says.)
func completeShape(schemas openapi3.Schemas) {
	if flat := schemas["Flat"]; flat != nil && flat.Value != nil {
		if st := flat.Value.Properties["status"]; st != nil && st.Value != nil {
			st.Value.Enum = []any{"created", "approved", "declined", "on moderation"}
		}
	}
}

// referenced reports whether the document still points at a schema.
func referenced(doc *openapi3.T, name string) bool {
	raw, err := json.Marshal(doc)
	if err != nil {
		return true
	}
	return bytes.Contains(raw, []byte(`"#/components/schemas/`+name+`"`))
}

func addSentence(desc, s string) string {
	if desc == "" {
		return s
	}
	return strings.TrimRight(desc, " \n") + " " + s
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

func ptr[T any](v T) *T { return &v }

// completed is the generated document with Complete applied, as YAML.
func completed(generated []byte) ([]byte, error) {
	doc, err := openapi3.NewLoader().LoadFromData(generated)
	if err != nil {
		return nil, fmt.Errorf("load generated openapi.yaml: %w", err)
	}
	if err := Complete(doc); err != nil {
		return nil, err
	}
	if err := doc.Validate(context.Background()); err != nil {
		return nil, fmt.Errorf("validate completed openapi document: %w", err)
	}
	raw, err := json.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("marshal openapi document: %w", err)
	}
	// JSON is YAML: reading it into a node keeps the (sorted) key order.
	var node yaml.Node
	if err := yaml.Unmarshal(raw, &node); err != nil {
		return nil, fmt.Errorf("read openapi document as yaml: %w", err)
	}
	plainStyle(&node)
	reorder(node.Content[0], "openapi", "info", "tags", "paths", "components")
	node.HeadComment = "Generated with protoc-gen-openapi from the protos (buf generate), then\n" +
		"completed by pkg/apidocs.Complete: response_body, the error body, the\n" +
		"validation limits of buf.validate and the bearer token's security scheme."
	var out bytes.Buffer
	enc := yaml.NewEncoder(&out)
	enc.SetIndent(2)
	if err := enc.Encode(&node); err != nil {
		return nil, fmt.Errorf("write openapi document as yaml: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("write openapi document as yaml: %w", err)
	}
	return out.Bytes(), nil
}

// reorder puts the named keys of a mapping node first, in that order.
func reorder(m *yaml.Node, first ...string) {
	type pair struct{ k, v *yaml.Node }
	var head, tail []pair
	for i := 0; i+1 < len(m.Content); i += 2 {
		p := pair{m.Content[i], m.Content[i+1]}
		if slices.Contains(first, p.k.Value) {
			head = append(head, p)
		} else {
			tail = append(tail, p)
		}
	}
	slices.SortStableFunc(head, func(a, b pair) int {
		return slices.Index(first, a.k.Value) - slices.Index(first, b.k.Value)
	})
	m.Content = m.Content[:0]
	for _, p := range append(head, tail...) {
		m.Content = append(m.Content, p.k, p.v)
	}
}

// plainStyle drops the JSON flow style and quoting so that the YAML reads
// like YAML; strings that need quotes get them from the encoder.
func plainStyle(n *yaml.Node) {
	n.Style = 0
	for _, c := range n.Content {
		plainStyle(c)
	}
}
