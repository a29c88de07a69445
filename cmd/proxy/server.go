package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/recover"
	"github.com/prometheus/client_golang/prometheus"

	"llmproxy/embed"
	"llmproxy/memory"
	"llmproxy/router"
)

// Locals keys set by the middlewares below.
const (
	localsKey    = "llmproxy.key"
	localsError  = "llmproxy.error"
	localsStream = "llmproxy.stream"
	localsReq    = "llmproxy.req"
	// localsAccess marks a request the accessLog middleware saw: fasthttp
	// refuses some (408, 431) before any middleware runs.
	localsAccess = "llmproxy.access"
)

// Server is the HTTP face of llmproxy: the only code that knows fiber.
type Server struct {
	app  *fiber.App
	log  *slog.Logger
	keys *keyring
	chat router.Handler
	// embed is the same chain as chat, serving embeddings.
	embed router.EmbedHandler
	// embedder is the embedding service's Go API, bound to embed.
	embedder *embed.Service
	// rerank is the rerank chain: the budget guard around the router.
	rerank  router.RerankHandler
	router  *router.Router
	models  []modelInfo
	byModel map[string]*modelInfo
	metrics *metrics
	gather  *prometheus.Registry
	// base is the parent of every request context: cancelling it stops
	// every in-flight upstream call at the end of a drain.
	base   context.Context
	cancel context.CancelFunc
	ready  atomic.Bool
	// stopping is set once a shutdown began: /ready then says so.
	stopping atomic.Bool
	checks   []readyCheck
	idPref   string
	idSeq    atomic.Uint64
	maxBody  int
	// pingEvery is how often a silent stream is pinged (keepAlive).
	pingEvery time.Duration
	// maxInflight is server.max_inflight resolved (shed.go); 0: no limit.
	maxInflight int
	// bodyIdle and bodyTotal bound reading a body (body.go):
	// server.body_read_timeout per read, server.read_timeout in all.
	bodyIdle, bodyTotal time.Duration
	// usage is the usage ledger and its reports (usage.go); nil without one.
	usage *usageLedger
	// memory serves the Conversations API; nil without it.
	memory *memory.Memory
	// vectors serves the Files and Vector Stores API; nil without it.
	vectors *vectorStores
	// uploads holds a token per upload being received (files_http.go).
	uploads chan struct{}
	// closers run once, in order, after the drain in Shutdown (the ledger
	// flush first).
	closers   []func(context.Context) error
	closeOnce sync.Once
	closeErr  error
	// work is every handler and stream writer still running; Shutdown
	// waits for it before the closers.
	work inflight
	// master guards /admin/deployments (route_http.go).
	master masterKey
	// tracing starts server spans; nil when tracing is off.
	tracing *tracing
}

// readyCheck is a dependency that must answer before /ready says yes.
type readyCheck struct {
	name  string
	check func(context.Context) error
}

// ServerOptions are the parts a Server is built from (see wire.go).
type ServerOptions struct {
	Log  *slog.Logger
	Keys *keyring
	Chat router.Handler // the middleware chain around Router; it serves embeddings too
	// Embed, when set, serves embeddings instead of Chat: the chain with
	// the embedding service's stages (wire_embed.go).
	Embed router.EmbedHandler
	// Embedder is the embedding service's Go API (RAG, ingestion); Embed
	// must be its chain. NewServer binds it and records its calls in the
	// usage ledger.
	Embedder *embed.Service
	// Rerank serves /v1/rerank and RAG's rerank step: the budget guard
	// around Router (wire.go).
	Rerank   router.RerankHandler
	Router   *router.Router
	Models   []modelInfo
	Registry *prometheus.Registry
	Metrics  *metrics
	Checks   []readyCheck
	Server   ServerConfig
	// Usage is the usage ledger; nil serves no /v1/usage data.
	Usage *usageLedger
	// Closers run after the drain, in order (see Server.Shutdown).
	Closers []func(context.Context) error
	// Memory serves the Conversations API; nil serves none.
	Memory *memory.Memory
	// VectorStores serves the Files and Vector Stores API; nil serves
	// none.
	VectorStores *vectorStores
	// Tracing, when set, gives each request a server span.
	Tracing *tracing
}

// NewServer builds the fiber app and its routes.
func NewServer(o ServerOptions) *Server {
	s := &Server{log: o.Log, keys: o.Keys, chat: o.Chat, router: o.Router, metrics: o.Metrics, gather: o.Registry, checks: o.Checks,
		models: o.Models, byModel: make(map[string]*modelInfo, len(o.Models)), maxBody: int(o.Server.MaxBodyBytes)}
	s.usage, s.closers, s.memory, s.vectors, s.tracing = o.Usage, o.Closers, o.Memory, o.VectorStores, o.Tracing
	if s.vectors != nil {
		s.uploads = make(chan struct{}, maxUploads(s.vectors.cfg.MaxFileBytes))
	}
	embed, ok := o.Chat.(router.EmbedHandler)
	if !ok {
		// router.Chain keeps the Router's embeddings: only a miswired
		// server gets here.
		panic("llmproxy: the chat chain does not serve embeddings")
	}
	s.embed = embed
	s.rerank = o.Rerank
	if o.Embed != nil {
		s.embed = o.Embed
	}
	if s.embedder = o.Embedder; s.embedder != nil {
		s.embedder.Bind(s.embed, s.recordEmbedCall)
	}
	s.bodyIdle, s.bodyTotal = time.Duration(o.Server.BodyReadTimeout), time.Duration(o.Server.ReadTimeout)
	s.pingEvery = defaultPingEvery
	switch {
	case o.Server.MaxInflight > 0:
		s.maxInflight = o.Server.MaxInflight
	case o.Server.MaxInflight == 0:
		s.maxInflight = defaultMaxInflight()
	}
	s.master = newMasterKey(o.Server.MasterKey)
	for i := range s.models {
		s.byModel[s.models[i].ID] = &s.models[i]
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	s.idPref = "req_" + hex.EncodeToString(b[:]) + "-"
	s.base, s.cancel = context.WithCancel(context.Background())
	s.app = fiber.New(fiber.Config{
		AppName:               "llmproxy",
		DisableStartupMessage: true,
		BodyLimit:             s.maxBody,
		// Handlers read bodies themselves, after auth and with a cap
		// (body.go): fasthttp reads only the headers and 8 KiB first,
		// within body_read_timeout, instead of allocating the declared
		// Content-Length up front.
		StreamRequestBody: true,
		// Multipart bodies too: fasthttp would otherwise parse an upload
		// into memory and temporary files before any handler (and auth)
		// ran, without a limit. files_http.go reads it as a stream.
		DisablePreParseMultipartForm: true,
		ReadTimeout:                  firstReadTimeout(o.Server),
		IdleTimeout:                  time.Duration(o.Server.IdleTimeout),
		// No WriteTimeout: it bounds the whole response and would cut long
		// streams; streams are bounded per chunk instead (DEPS.md).
		ErrorHandler:   s.errorHandler,
		ReadBufferSize: 16 << 10,
	})
	s.routes()
	return s
}

func (s *Server) routes() {
	a := s.app
	a.Use(s.withRequestID, s.accessLog, recover.New(recover.Config{EnableStackTrace: true, StackTraceHandler: s.logPanic}))
	a.Get("/health", func(c *fiber.Ctx) error { return c.JSON(fiber.Map{"status": "ok"}) })
	a.Get("/ready", s.readyHandler)
	a.Get("/metrics", s.metricsHandler())
	// auth sits on each route, not on a /v1 group, so an unknown URL answers
	// 404 rather than asking for a key.
	a.Post("/v1/chat/completions", s.auth, s.chatHandler)
	a.Post("/v1/embeddings", s.auth, s.embeddingsHandler)
	a.Post("/v1/rerank", s.auth, s.rerankHandler)
	a.Get("/v1/models", s.auth, s.listModels)
	a.Get("/v1/models/:id", s.auth, s.getModel)
	a.Get("/v1/usage", s.auth, s.usageHandler)
	a.Get("/admin/usage", s.adminUsage)
	a.Post("/v1/route/explain", s.auth, s.explainHandler)
	a.Get("/admin/deployments", s.adminDeployments)
	if s.memory != nil {
		s.conversationRoutes()
	}
	if s.vectors != nil {
		s.fileRoutes()
		s.vectorStoreRoutes()
	}
}

// requestID is the client's X-Request-Id when it is sane, else a new one.
func (s *Server) requestID(c *fiber.Ctx) string {
	if id := c.Get(fiber.HeaderXRequestID); id != "" && len(id) <= 128 && printable(id) {
		return id
	}
	return s.idPref + strconv.FormatUint(s.idSeq.Add(1), 36)
}

func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

func (s *Server) withRequestID(c *fiber.Ctx) error {
	c.Set(fiber.HeaderXRequestID, s.requestID(c))
	err := c.Next()
	s.closeUnread(c)
	return err
}

func (s *Server) logPanic(c *fiber.Ctx, e any) {
	s.log.Error("panic in handler", slog.String("request_id", string(c.Response().Header.Peek(fiber.HeaderXRequestID))), slog.Any("err", e), slog.String("stack", stack()))
}

// auth resolves the bearer key to a team; every /v1 route needs one.
func (s *Server) auth(c *fiber.Ctx) error {
	k, ok := s.keys.lookup(c.Request().Header.Peek(fiber.HeaderAuthorization))
	if !ok {
		msg := "Incorrect API key provided. You can find your API keys in your llmproxy team configuration."
		if len(c.Request().Header.Peek(fiber.HeaderAuthorization)) == 0 {
			msg = "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."
		}
		return &router.Error{Kind: router.KindUnauthorized, Message: msg, Code: "invalid_api_key"}
	}
	c.Locals(localsKey, k)
	return c.Next()
}

func (s *Server) readyHandler(c *fiber.Ctx) error {
	if !s.ready.Load() {
		status := "starting"
		if s.stopping.Load() {
			status = "shutting_down"
		}
		return c.Status(fiber.StatusServiceUnavailable).JSON(fiber.Map{"status": status})
	}
	ctx, cancel := context.WithTimeout(c.UserContext(), 2*time.Second)
	defer cancel()
	failed := fiber.Map{}
	for _, rc := range s.checks {
		if err := rc.check(ctx); err != nil {
			failed[rc.name] = err.Error()
		}
	}
	if len(failed) > 0 {
		return c.Status(fiber.StatusServiceUnavailable).JSON(fiber.Map{"status": "unavailable", "failed": failed})
	}
	return c.JSON(fiber.Map{"status": "ready"})
}

// requestContext derives a request's context from the server's base
// context, so a drain can cancel it, with the request's identity attached.
func (s *Server) requestContext(c *fiber.Ctx, k *teamKey) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(s.base)
	ctx = router.WithRequestID(ctx, string(c.Response().Header.Peek(fiber.HeaderXRequestID)))
	ctx = router.WithIdentity(ctx, router.Identity{Team: k.team, KeyID: k.id})
	return s.spanContext(ctx, c), cancel
}

// Serve accepts on ln until Shutdown; /ready turns green once it runs.
func (s *Server) Serve(ln net.Listener) error {
	s.ready.Store(true)
	return s.app.Listener(ln)
}

// Unready turns /ready red while the server keeps serving: the start of a
// shutdown delay (serveUntilSignal).
func (s *Server) Unready() {
	s.stopping.Store(true)
	s.ready.Store(false)
}

// cutGrace bounds the wait, after the drain ran out and the requests were
// cancelled, for their handlers and stream writers to end: each then
// settles its budget and queues its ledger row, which the closers need to
// see before Redis and the database close. Settling has its own short
// timeout, so this is only reached by a stuck writer.
const cutGrace = 5 * time.Second

// Shutdown stops accepting, lets in-flight requests and streams finish
// within drain, then cancels whatever is still running: a stream cut then
// ends with an error event (errShuttingDown), not a clean end. The closers
// (ledger flush, then Redis) run once every handler and stream writer has
// ended, or after cutGrace.
//
// The cut happens inside fasthttp's shutdown (a timer, not after it
// returns), because fasthttp forgets it is stopping when its shutdown
// returns: a connection whose cut stream ended after that would stay open
// for keep-alive.
func (s *Server) Shutdown(drain time.Duration) error {
	s.Unready()
	ctx, stop := context.WithTimeout(context.Background(), drain+cutGrace)
	defer stop()
	cut := time.AfterFunc(drain, s.cancel)
	err := s.app.ShutdownWithContext(ctx)
	if !cut.Stop() {
		err = errors.Join(fmt.Errorf("drain_timeout %v ran out: in-flight requests were cut", drain), err)
	}
	s.cancel()
	if n := s.work.wait(cutGrace); n > 0 {
		s.log.Error("requests still running after the drain; closing the ledger and Redis under them",
			slog.Int("requests", n), slog.Duration("grace", cutGrace))
	}
	return errors.Join(err, s.runClosers())
}

// runClosers runs the closers once (Shutdown may be called twice) and
// returns their errors.
func (s *Server) runClosers() error {
	s.closeOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), ledgerFlushTimeout)
		defer cancel()
		var errs []error
		for _, c := range s.closers {
			errs = append(errs, c(ctx))
		}
		s.closeErr = errors.Join(errs...)
	})
	return s.closeErr
}
