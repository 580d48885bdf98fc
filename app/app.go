// Package app wires natter's parts (the SQLite store, the hub, the HTTP server) into one running
// program. cmd/natter uses it, and so do tests that need a whole server on a random port.
package app

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"natter"
	"natter/hub"
	"natter/redisstore"
	"natter/server"
	"natter/sqlite"
)

// DBFile is the database's file name in the data directory.
const DBFile = "natter.db"

// Config is everything `natter serve` can be told. Zero fields take documented defaults.
type Config struct {
	Addr    string // listen address; default "localhost:8080"; ":0" picks a free port
	DataDir string // where natter.db lives; default "./natter-data"
	Logger  *slog.Logger
	// Sync is SQLite's synchronous setting: "FULL" (default: an acknowledged message survives
	// power loss) or "NORMAL" (survives a crash of natter, not of the machine).
	Sync string
	// ReadHeaderTimeout is the http.Server's (default server.DefaultReadHeaderTimeout); its
	// IdleTimeout is Server.IdleTimeout.
	ReadHeaderTimeout time.Duration
	// TLSCert and TLSKey, both set, are PEM files of a certificate (chain) and its key: natter
	// then serves HTTPS (and wss://) itself, over HTTP/1.1 only, since its streams take over
	// their connections, which HTTP/2 does not allow.
	TLSCert, TLSKey string
	// Redis, if set, is the URL of a Redis (redis://host:port/db) that keeps the rooms, logs,
	// accounts and sessions instead of SQLite, shared by every natter node that uses it with the
	// same RedisPrefix (default "natter"). DataDir and Sync are then unused.
	Redis, RedisPrefix string
	Server             server.Config // Store, Hub and Logger are filled in by Open
}

// Main is a running natter: a listener, the HTTP server, the hub and the store.
type Main struct {
	cfg      Config
	store    natter.Store
	hub      *hub.Hub
	srv      *server.Server
	http     *http.Server
	listener net.Listener
	tls      bool // serving HTTPS
	served   chan error
}

// Open starts natter: it opens (and migrates) the store, binds the address and starts serving.
func Open(ctx context.Context, cfg Config) (*Main, error) {
	if cfg.Addr == "" {
		cfg.Addr = "localhost:8080"
	}
	if cfg.DataDir == "" {
		cfg.DataDir = "natter-data"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	var tlsConfig *tls.Config
	if cfg.TLSCert != "" || cfg.TLSKey != "" {
		if cfg.TLSCert == "" || cfg.TLSKey == "" {
			return nil, errors.New("TLS needs both a certificate and its key")
		}
		cert, err := tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey)
		if err != nil {
			return nil, fmt.Errorf("TLS certificate: %w", err)
		}
		tlsConfig = &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"http/1.1"}, MinVersion: tls.VersionTLS12}
	}
	m := &Main{cfg: cfg, served: make(chan error, 1)}

	// The hub needs the store for backlogs and the store needs the hub for commits: the store
	// reports commits through a func that reaches the hub once both exist. So with revocations
	// made on other nodes (Redis), which reach the server. Other nodes' commits and revocations
	// can come before then: with no hub there is no subscriber to tell, and with no server no
	// session cached nor connection open.
	var hubReady atomic.Pointer[hub.Hub]
	var srvReady atomic.Pointer[server.Server]
	onCommit := func(msgs []natter.Message) {
		if h := hubReady.Load(); h != nil {
			h.Committed(msgs)
		}
	}
	var store natter.Store
	if cfg.Redis != "" {
		rs, err := redisstore.Open(ctx, redisstore.Config{
			URL:      cfg.Redis,
			Prefix:   cfg.RedisPrefix,
			OnCommit: onCommit,
			OnRevoke: func(r redisstore.Revocation) {
				switch srv := srvReady.Load(); {
				case srv == nil:
				case r.Deleted:
					srv.RoomDeleted(r.Room)
				case r.Ban:
					go srv.BanChanged(r.Room, r.User) // it reads the room's bans: not on the subscriber's goroutine
				case r.Room != "":
					srv.MemberRemoved(r.Room, r.User)
				default:
					srv.Revoked(r.TokenHash, r.User, r.Keep, r.At)
				}
			},
			OnResubscribe: func() {
				if srv := srvReady.Load(); srv != nil {
					go srv.RecheckSessions(context.Background())
				}
			},
			Logger:       cfg.Logger,
			MaxBodyChars: cfg.Server.Limits.WithDefaults().MaxBodyChars,
		})
		if err != nil {
			return nil, fmt.Errorf("open store: %w", err)
		}
		store = rs
	} else {
		if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
			return nil, fmt.Errorf("data dir: %w", err)
		}
		ss, err := sqlite.Open(ctx, sqlite.Config{
			Path:         filepath.Join(cfg.DataDir, DBFile),
			OnCommit:     onCommit,
			Logger:       cfg.Logger,
			Synchronous:  cfg.Sync,
			MaxBodyChars: cfg.Server.Limits.WithDefaults().MaxBodyChars,
		})
		if err != nil {
			return nil, fmt.Errorf("open store: %w", err)
		}
		store = ss
	}
	h := hub.New(store, store, cfg.Logger)
	if rs, ok := store.(*redisstore.Store); ok {
		// Presence across nodes: this hub's changes go out, the others' come in.
		h.SetPresenceSink(rs.PublishPresence)
		h.SetTypingSink(rs.PublishTyping)
		h.SetRenameSink(rs.PublishRenamed)
		rs.SetPresence(h)
	}
	hubReady.Store(h)
	m.store, m.hub = store, h

	sc := cfg.Server
	if sc.IdleTimeout <= 0 {
		sc.IdleTimeout = server.DefaultIdleTimeout
	}
	if cfg.ReadHeaderTimeout <= 0 {
		cfg.ReadHeaderTimeout = server.DefaultReadHeaderTimeout
	}
	sc.Store, sc.Hub, sc.Logger = store, h, cfg.Logger
	srv, err := server.New(sc)
	if err != nil {
		store.Close()
		h.Close()
		return nil, err
	}
	m.srv = srv
	srvReady.Store(srv)

	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		srv.BeginShutdown()
		store.Close()
		h.Close()
		return nil, fmt.Errorf("listen: %w", err)
	}
	m.listener, m.tls = ln, tlsConfig != nil
	served := ln
	if tlsConfig != nil {
		// TLS inside the reuse listener: connections that long-polls hand back are TLS
		// connections already, and must not be wrapped again.
		served = tls.NewListener(ln, tlsConfig)
	}
	m.http = &http.Server{
		Handler:           srv,
		ConnState:         srv.ConnState, // with srv.Listener below: long-polls keep their connection
		ReadHeaderTimeout: cfg.ReadHeaderTimeout,
		IdleTimeout:       sc.IdleTimeout, // the same as kept long-poll connections get
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelDebug),
	}
	if tlsConfig != nil {
		m.http.TLSConfig = tlsConfig
		m.http.TLSNextProto = map[string]func(*http.Server, *tls.Conn, http.Handler){} // no HTTP/2
	}
	go func() { m.served <- m.http.Serve(srv.Listener(served)) }()
	return m, nil
}

// Addr returns the address natter listens on.
func (m *Main) Addr() net.Addr { return m.listener.Addr() }

// URL returns the base URL to open in a browser.
func (m *Main) URL() string {
	addr := m.listener.Addr().(*net.TCPAddr)
	host := addr.IP.String()
	if addr.IP.IsUnspecified() {
		host = "localhost"
	}
	scheme := "http"
	if m.tls {
		scheme = "https"
	}
	return fmt.Sprintf("%s://%s", scheme, net.JoinHostPort(host, fmt.Sprint(addr.Port)))
}

// Server returns the HTTP server (for tests that inspect connection counts).
func (m *Main) Server() *server.Server { return m.srv }

// Hub returns the hub that fans messages out to this node's connections.
func (m *Main) Hub() *hub.Hub { return m.hub }

// Close shuts down in order: stop accepting and mark not ready; answer parked long-polls; close
// WebSockets with 1001 "going away" and end SSE streams; wait for handlers and connections to
// drain (until ctx ends); then flush and close the store.
func (m *Main) Close(ctx context.Context) error {
	m.srv.BeginShutdown()
	errHTTP := m.http.Shutdown(ctx)
	errConns := m.srv.WaitConns(ctx)
	errStore := m.store.Close()
	m.hub.Close() // after the store: its last commits are still delivered
	if err := <-m.served; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return errors.Join(errHTTP, errConns, errStore)
}
