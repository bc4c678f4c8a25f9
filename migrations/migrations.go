// Package migrations holds the numbered SQL migrations of every service,
// embedded so that the binary applies them itself. Files are named
// NNNN_name.tx.up.sql / NNNN_name.tx.down.sql and run in a transaction each.
package migrations

import "embed"

// FS holds the SQL files.
//
//go:embed *.sql
var FS embed.FS
