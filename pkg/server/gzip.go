package server

import (
	"compress/gzip"
	"fmt"
	"io"

	"connectrpc.com/connect"
)

// clientGzip is the transcoder's gzip decompressor. Vanguard decompresses
// request bodies itself (REST and Connect JSON requests), and reports any
// error it gets as internal (500); a body that is not valid gzip is the
// client's fault, so its errors leave here as invalid_argument (400). The
// services' handlers never compress for vanguard (WithNoTargetCompression),
// so what this decompresses always comes from the client.
type clientGzip struct {
	r gzip.Reader
}

var _ connect.Decompressor = (*clientGzip)(nil)

func newClientGzip() connect.Decompressor { return &clientGzip{} }

func newGzipWriter() connect.Compressor { return gzip.NewWriter(io.Discard) }

// Read implements io.Reader.
func (g *clientGzip) Read(p []byte) (int, error) {
	n, err := g.r.Read(p)
	if err != nil && err != io.EOF {
		return n, badGzip(err)
	}
	return n, err
}

// Reset implements connect.Decompressor.
func (g *clientGzip) Reset(r io.Reader) error {
	if err := g.r.Reset(r); err != nil {
		return badGzip(err)
	}
	return nil
}

// Close implements connect.Decompressor.
func (g *clientGzip) Close() error {
	if err := g.r.Close(); err != nil {
		return badGzip(err)
	}
	return nil
}

func badGzip(err error) error {
	return connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("decompress request body (Content-Encoding: gzip): %w", err))
}
