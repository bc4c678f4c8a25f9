package gateway

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"connectrpc.com/connect"

	"github.com/homeservices/homes/pkg/server"
)

// maxEndBytes bounds what is kept of a response to learn its code: a
// Connect unary error body, a gRPC-Web trailers frame, a Connect
// end-of-stream message. Longer ones give the code "unknown".
const maxEndBytes = 64 << 10

// rpcKind is the protocol of a proxied RPC, which says where its outcome is.
type rpcKind int

const (
	kindConnectUnary  rpcKind = iota // HTTP status, error body {"code": ...}
	kindConnectStream                // end-of-stream message {"error": {"code": ...}}
	kindGRPC                         // Grpc-Status header or trailer
	kindGRPCWeb                      // Grpc-Status header or trailers frame
)

func rpcKindOf(r *http.Request) rpcKind {
	ct := r.Header.Get("Content-Type")
	switch {
	case strings.HasPrefix(ct, "application/grpc-web"):
		return kindGRPCWeb
	case strings.HasPrefix(ct, "application/grpc"):
		return kindGRPC
	case strings.HasPrefix(ct, "application/connect+"):
		return kindConnectStream
	default:
		return kindConnectUnary
	}
}

// call is one proxied RPC. The gateway runs no Connect interceptors, so it
// reads the procedure from the path and the code from the upstream's
// answer, and puts both on the access log line as a service's interceptors
// do (server.AddLogAttrs).
type call struct {
	procedure string
	kind      rpcKind
	resp      *http.Response // the upstream's answer, nil if none came
	err       error          // why no answer came
	kept      *keeper        // what the body scan kept, nil if not scanned
}

type callKey struct{}

func callFrom(ctx context.Context) *call {
	c, _ := ctx.Value(callKey{}).(*call)
	return c
}

// withCallLog marks requests to a service's RPC prefix as calls, and once
// the proxy is done (body and trailers copied) logs how they ended.
func withCallLog(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := &call{procedure: r.URL.Path, kind: rpcKindOf(r)}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), callKey{}, c)))
		server.AddLogAttrs(r.Context(), slog.String("procedure", c.procedure), slog.String("code", c.code()))
	})
}

// observe is the proxy's ModifyResponse step for a call: it keeps what
// the code will be read from, passing the body through unchanged.
func (c *call) observe(resp *http.Response) error {
	c.resp = resp
	switch c.kind {
	case kindConnectUnary:
		if resp.StatusCode == http.StatusOK {
			return nil
		}
		enc := resp.Header.Get("Content-Encoding")
		c.kept = &keeper{compressed: enc != "" && enc != "identity"}
		resp.Body = &bodyScanner{ReadCloser: resp.Body, scan: c.kept.keep}
	case kindConnectStream, kindGRPCWeb:
		end := byte(0x02) // Connect's end-of-stream flag
		if c.kind == kindGRPCWeb {
			end = 0x80 // gRPC-Web's trailers flag
		}
		c.kept = &keeper{}
		env := &envelopes{end: end, kept: c.kept}
		resp.Body = &bodyScanner{ReadCloser: resp.Body, scan: env.scan}
	case kindGRPC:
		// Headers and trailers only.
	}
	return nil
}

// code names the outcome as server.CodeOf does: "ok", "not_found", ...
func (c *call) code() string {
	switch {
	case c.resp == nil && errors.Is(c.err, context.Canceled):
		return connect.CodeCanceled.String()
	case c.resp == nil && c.err != nil:
		return connect.CodeUnavailable.String() // the gateway answered 502
	case c.resp == nil:
		return connect.CodeUnknown.String()
	}
	h := c.resp.Header
	switch c.kind {
	case kindGRPC:
		if s := h.Get("Grpc-Status"); s != "" {
			return grpcCode(s) // trailers-only answer
		}
		return grpcCode(c.resp.Trailer.Get("Grpc-Status"))
	case kindGRPCWeb:
		if s := h.Get("Grpc-Status"); s != "" {
			return grpcCode(s)
		}
		raw, ok := c.kept.payload(h.Get("Grpc-Encoding"))
		if !ok {
			return connect.CodeUnknown.String()
		}
		for line := range strings.SplitSeq(string(raw), "\r\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.EqualFold(strings.TrimSpace(k), "grpc-status") {
				return grpcCode(strings.TrimSpace(v))
			}
		}
		return connect.CodeUnknown.String()
	case kindConnectStream:
		raw, ok := c.kept.payload(h.Get("Connect-Content-Encoding"))
		var end struct {
			Error *struct {
				Code string `json:"code"`
			} `json:"error"`
		}
		if !ok || json.Unmarshal(raw, &end) != nil {
			return connect.CodeUnknown.String()
		}
		if end.Error == nil {
			return "ok"
		}
		return orUnknown(end.Error.Code)
	default: // Connect unary
		if c.resp.StatusCode == http.StatusOK {
			return "ok"
		}
		raw, ok := c.kept.payload(h.Get("Content-Encoding"))
		var body struct {
			Code string `json:"code"`
		}
		if !ok || json.Unmarshal(raw, &body) != nil {
			return connect.CodeUnknown.String()
		}
		return orUnknown(body.Code)
	}
}

// grpcCode turns a Grpc-Status value ("5") into the code's name.
func grpcCode(s string) string {
	n, err := strconv.ParseUint(s, 10, 32)
	switch {
	case err != nil || n > uint64(connect.CodeUnauthenticated):
		return connect.CodeUnknown.String()
	case n == 0:
		return "ok"
	}
	return connect.Code(n).String()
}

func orUnknown(code string) string {
	var c connect.Code
	if code == "" || c.UnmarshalText([]byte(code)) != nil {
		return connect.CodeUnknown.String()
	}
	return code
}

// keeper holds up to maxEndBytes of a message.
type keeper struct {
	buf        []byte
	compressed bool
	overflow   bool
}

func (k *keeper) keep(p []byte) {
	if len(k.buf)+len(p) > maxEndBytes {
		k.overflow = true
		return
	}
	k.buf = append(k.buf, p...)
}

// payload is the kept message, gunzipped if it was compressed.
func (k *keeper) payload(encoding string) ([]byte, bool) {
	switch {
	case k == nil || k.overflow:
		return nil, false
	case !k.compressed:
		return k.buf, true
	case encoding != "gzip":
		return nil, false // the only compression these services speak
	}
	zr, err := gzip.NewReader(bytes.NewReader(k.buf))
	if err != nil {
		return nil, false
	}
	raw, err := io.ReadAll(io.LimitReader(zr, maxEndBytes))
	return raw, err == nil
}

// envelopes follows a stream of length-prefixed messages (a flags byte, a
// big-endian uint32 length, the payload) and keeps the one flagged end.
type envelopes struct {
	end    byte
	kept   *keeper
	head   [5]byte
	nhead  int
	left   uint32
	inLast bool
}

func (e *envelopes) scan(b []byte) {
	for len(b) > 0 {
		if e.nhead < len(e.head) {
			k := copy(e.head[e.nhead:], b)
			e.nhead, b = e.nhead+k, b[k:]
			if e.nhead < len(e.head) {
				return
			}
			e.left = binary.BigEndian.Uint32(e.head[1:])
			e.inLast = e.head[0]&e.end != 0
			if e.inLast {
				*e.kept = keeper{compressed: e.head[0]&0x01 != 0}
			}
			if e.left == 0 {
				e.nhead = 0
			}
			continue
		}
		k := min(uint32(len(b)), e.left)
		if e.inLast {
			e.kept.keep(b[:k])
		}
		e.left, b = e.left-k, b[k:]
		if e.left == 0 {
			e.nhead = 0
		}
	}
}

// bodyScanner shows every byte read through it to scan.
type bodyScanner struct {
	io.ReadCloser
	scan func([]byte)
}

func (b *bodyScanner) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.scan(p[:n])
	return n, err
}
