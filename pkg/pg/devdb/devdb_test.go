package devdb

import (
	"context"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/jackc/pgx/v5"
)

// TestStartsPrivateServer plays a machine where nothing answers on the
// default address: Ensure must initialise and start a private server from
// the installed binaries (as a non-root user when run as root) and return a
// working URL of the "homes" database.
func TestStartsPrivateServer(t *testing.T) {
	t.Parallel()
	if _, err := findBinaries("127.0.0.1:1"); err != nil {
		t.Fatalf("this machine cannot run the fallback: %v", err)
	}
	closed := freeAddr(t) // nothing listens here
	port := freeAddr(t).(*net.TCPAddr).Port
	dir := t.TempDir()
	// The server's user must be able to reach its folder.
	for d := dir; d != "/" && d != os.TempDir(); d = filepath.Dir(d) {
		_ = os.Chmod(d, 0o755)
	}
	ctx := context.Background()
	url, err := ensure(ctx, closed.String(), port, dir, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatalf("ensure: %v", err)
	}
	t.Cleanup(func() { stopServer(t, filepath.Join(dir, "postgres")) })
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("connect to %s: %v", url, err)
	}
	defer func() { _ = conn.Close(ctx) }()
	var db string
	if err := conn.QueryRow(ctx, "SELECT current_database()").Scan(&db); err != nil || db != Database {
		t.Fatalf("database %q, %v; want %q", db, err, Database)
	}
	// A second call finds the running server instead of starting another.
	again, err := ensure(ctx, closed.String(), port, dir, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil || again != url {
		t.Fatalf("second ensure: %q, %v", again, err)
	}
}

func freeAddr(t *testing.T) net.Addr {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr()
	_ = ln.Close()
	return addr
}

func stopServer(t *testing.T, pgData string) {
	bin, err := findBinaries("127.0.0.1:1")
	if err != nil {
		return
	}
	cred, err := serverUser()
	if err != nil {
		t.Log(err)
		return
	}
	cmd := exec.Command(filepath.Join(bin, "pg_ctl"), "-D", pgData, "-m", "immediate", "stop")
	if cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	}
	cmd.Dir = "/"
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Logf("stop private server: %v: %s", err, out)
	}
}
