// Package devdb finds a PostgreSQL for the laptop run and the tests: the one
// on the local default address if it answers, otherwise a private server
// started from Debian's binaries in a git-ignored data folder.
package devdb

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// DefaultURL is the database used on the PostgreSQL the machine is
// expected to run; Ensure creates it when missing.
const DefaultURL = "postgres://postgres@127.0.0.1:5432/" + Database + "?sslmode=disable"

// Database is the name of the laptop database Ensure returns.
const Database = "homes"

const (
	defaultAddr = "127.0.0.1:5432"
	// PrivatePort is where the private server listens (loopback only).
	PrivatePort = 54329
	binGlob     = "/usr/lib/postgresql/*/bin"
)

// Ensure returns the URL of a usable PostgreSQL. When something answers on
// 127.0.0.1:5432 it returns DefaultURL; otherwise it initialises (once) and
// starts a private server under dataDir, telling log what it does.
func Ensure(ctx context.Context, dataDir string, log *slog.Logger) (string, error) {
	return ensure(ctx, defaultAddr, PrivatePort, dataDir, log)
}

func ensure(ctx context.Context, defaultAddr string, privatePort int, dataDir string, log *slog.Logger) (string, error) {
	server, err := ensureServer(ctx, defaultAddr, privatePort, dataDir, log)
	if err != nil {
		return "", err
	}
	return ensureDatabase(ctx, server)
}

// ensureDatabase creates the "homes" database on the server at serverURL
// (a URL of its "postgres" database) if needed, and returns its URL.
func ensureDatabase(ctx context.Context, serverURL string) (string, error) {
	conn, err := pgx.Connect(ctx, serverURL)
	if err != nil {
		return "", fmt.Errorf("connect to local PostgreSQL: %w", err)
	}
	defer func() { _ = conn.Close(ctx) }()
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", Database).Scan(&exists); err != nil {
		return "", fmt.Errorf("look up database %s: %w", Database, err)
	}
	if !exists {
		_, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{Database}.Sanitize())
		var pgErr *pgconn.PgError
		if err != nil && !(errors.As(err, &pgErr) && pgErr.Code == "42P04") { // created meanwhile
			return "", fmt.Errorf("create database %s: %w", Database, err)
		}
	}
	return strings.Replace(serverURL, "/postgres?", "/"+Database+"?", 1), nil
}

func ensureServer(ctx context.Context, defaultAddr string, privatePort int, dataDir string, log *slog.Logger) (string, error) {
	if answers(defaultAddr) {
		return "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable", nil
	}
	privateURL := fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", privatePort)
	privateAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(privatePort))
	if answers(privateAddr) {
		return privateURL, nil
	}
	bin, err := findBinaries(defaultAddr)
	if err != nil {
		return "", err
	}
	dataDir, err = filepath.Abs(dataDir)
	if err != nil {
		return "", fmt.Errorf("resolve data folder: %w", err)
	}
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		return "", fmt.Errorf("create data folder: %w", err)
	}
	unlock, err := lockFile(filepath.Join(dataDir, "postgres.lock"))
	if err != nil {
		return "", err
	}
	defer unlock()
	if answers(privateAddr) { // another process started it while we waited
		return privateURL, nil
	}
	log.Warn("no PostgreSQL answers on "+defaultAddr+" and DATABASE_URL is unset: starting a private one",
		"data", filepath.Join(dataDir, "postgres"), "url", privateURL)
	cred, err := serverUser()
	if err != nil {
		return "", err
	}
	pgData := filepath.Join(dataDir, "postgres")
	if _, err := os.Stat(filepath.Join(pgData, "PG_VERSION")); err != nil {
		if err := initDB(ctx, bin, pgData, cred); err != nil {
			return "", err
		}
	}
	if err := startServer(ctx, bin, pgData, privatePort, cred); err != nil {
		return "", err
	}
	return privateURL, nil
}

func answers(addr string) bool {
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	_ = conn.Close()
	return true
}

// findBinaries picks the newest installed server version.
func findBinaries(defaultAddr string) (string, error) {
	dirs, _ := filepath.Glob(binGlob)
	var usable []string
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			usable = append(usable, d)
		}
	}
	if len(usable) == 0 {
		return "", errors.New("no PostgreSQL answers on " + defaultAddr +
			", DATABASE_URL is unset, and no server binaries are installed under /usr/lib/postgresql: " +
			"install Debian's postgresql package (apt-get install postgresql) or set DATABASE_URL")
	}
	sort.Slice(usable, func(i, j int) bool {
		return versionOf(usable[i]) < versionOf(usable[j])
	})
	return usable[len(usable)-1], nil
}

func versionOf(binDir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return v
}

// serverUser is the account the server runs as: initdb and postgres refuse
// to run as root, so root hands them to the "postgres" (or "nobody") user.
func serverUser() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	for _, name := range []string{"postgres", "nobody"} {
		u, err := user.Lookup(name)
		if err != nil {
			continue
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
	}
	return nil, errors.New("running as root and no 'postgres' or 'nobody' user exists to run PostgreSQL as")
}

func run(ctx context.Context, cred *syscall.Credential, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, name, args...)
	if cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	}
	cmd.Dir = "/"
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("run %s: %w: %s", filepath.Base(name), err, out)
	}
	return nil
}

func initDB(ctx context.Context, bin, pgData string, cred *syscall.Credential) error {
	if err := os.MkdirAll(pgData, 0o700); err != nil {
		return fmt.Errorf("create postgres folder: %w", err)
	}
	if cred != nil {
		if err := os.Chown(pgData, int(cred.Uid), int(cred.Gid)); err != nil {
			return fmt.Errorf("hand postgres folder to its user: %w", err)
		}
	}
	return run(ctx, cred, filepath.Join(bin, "initdb"),
		"-D", pgData, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")
}

func startServer(ctx context.Context, bin, pgData string, privatePort int, cred *syscall.Credential) error {
	opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c max_connections=300 -c fsync=off",
		privatePort, pgData)
	logFile := filepath.Join(pgData, "server.log")
	err := run(ctx, cred, filepath.Join(bin, "pg_ctl"),
		"-D", pgData, "-l", logFile, "-o", opts, "-w", "-t", "60", "start")
	if err != nil {
		if tail, readErr := os.ReadFile(logFile); readErr == nil {
			if len(tail) > 2000 {
				tail = tail[len(tail)-2000:]
			}
			return fmt.Errorf("%w\nserver log:\n%s", err, tail)
		}
	}
	return err
}

// lockFile serialises starting the server across processes (test binaries
// of several packages start at once).
func lockFile(path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open lock file: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		_ = f.Close()
	}, nil
}

// RepoDataDir returns the ".data" folder at the root of the module that
// contains the working directory (where go.mod is), for tests that run from
// a package folder.
func RepoDataDir() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("get working directory: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(dir, ".data"), nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}
