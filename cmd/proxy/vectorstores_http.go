package main

import (
	"context"

	"github.com/gofiber/fiber/v2"

	"llmproxy/router"
	"llmproxy/vectorstore"
)

// The Vector Stores API (issue 11): OpenAI's shapes, logic in vectorstore;
// this file only routes.

// pollAfterMs is the openai-poll-after-ms an in-progress vector-store file
// or batch answers with: the SDKs' poll helpers (uploadAndPoll) wait that
// long before asking again, instead of their 1 s (Go) or 5 s (Node).
const pollAfterMs = "500"

func (s *Server) vectorStoreRoutes() {
	a := s.app
	h := s.vsHandler
	who := func(k *teamKey) router.Identity { return router.Identity{Team: k.team, KeyID: k.id} }
	a.Post("/v1/vector_stores", s.auth, h(func(ctx context.Context, v *vectorstore.Service, k *teamKey, _ *fiber.Ctx, b []byte) (any, error) {
		return v.CreateStore(ctx, who(k), b)
	}))
	a.Get("/v1/vector_stores", s.auth, h(func(ctx context.Context, v *vectorstore.Service, k *teamKey, c *fiber.Ctx, _ []byte) (any, error) {
		return v.ListStores(ctx, k.team, vsListQuery(c))
	}))
	a.Get("/v1/vector_stores/:id", s.auth, h(func(ctx context.Context, v *vectorstore.Service, k *teamKey, c *fiber.Ctx, _ []byte) (any, error) {
		return v.GetStore(ctx, k.team, c.Params("id"))
	}))
	a.Post("/v1/vector_stores/:id", s.auth, h(func(ctx context.Context, v *vectorstore.Service, k *teamKey, c *fiber.Ctx, b []byte) (any, error) {
		return v.UpdateStore(ctx, k.team, c.Params("id"), b)
	}))
	a.Delete("/v1/vector_stores/:id", s.auth, h(func(ctx context.Context, v *vectorstore.Service, k *teamKey, c *fiber.Ctx, _ []byte) (any, error) {
		return v.DeleteStore(ctx, k.team, c.Params("id"))
	}))
	a.Post("/v1/vector_stores/:id/search", s.auth, h(func(ctx context.Context, v *vectorstore.Service, k *teamKey, c *fiber.Ctx, b []byte) (any, error) {
		return v.SearchStore(router.WithLedgerRoute(ctx, "search"), k.team, c.Params("id"), b)
	}))

	a.Post("/v1/vector_stores/:id/files", s.auth, h(func(ctx context.Context, v *vectorstore.Service, k *teamKey, c *fiber.Ctx, b []byte) (any, error) {
		return v.AttachFile(ctx, who(k), c.Params("id"), b)
	}))
	a.Get("/v1/vector_stores/:id/files", s.auth, h(func(ctx context.Context, v *vectorstore.Service, k *teamKey, c *fiber.Ctx, _ []byte) (any, error) {
		return v.ListStoreFiles(ctx, k.team, c.Params("id"), c.Query("filter"), vsListQuery(c))
	}))
	a.Get("/v1/vector_stores/:id/files/:file", s.auth, h(func(ctx context.Context, v *vectorstore.Service, k *teamKey, c *fiber.Ctx, _ []byte) (any, error) {
		f, err := v.GetStoreFile(ctx, k.team, c.Params("id"), c.Params("file"))
		if err == nil && f.Status == vectorstore.StatusInProgress {
			c.Set("openai-poll-after-ms", pollAfterMs)
		}
		return f, err
	}))
	a.Post("/v1/vector_stores/:id/files/:file", s.auth, h(func(ctx context.Context, v *vectorstore.Service, k *teamKey, c *fiber.Ctx, b []byte) (any, error) {
		return v.UpdateStoreFile(ctx, k.team, c.Params("id"), c.Params("file"), b)
	}))
	a.Delete("/v1/vector_stores/:id/files/:file", s.auth, h(func(ctx context.Context, v *vectorstore.Service, k *teamKey, c *fiber.Ctx, _ []byte) (any, error) {
		return v.DeleteStoreFile(ctx, k.team, c.Params("id"), c.Params("file"))
	}))
	a.Get("/v1/vector_stores/:id/files/:file/content", s.auth, h(func(ctx context.Context, v *vectorstore.Service, k *teamKey, c *fiber.Ctx, _ []byte) (any, error) {
		return v.StoreFileContent(ctx, k.team, c.Params("id"), c.Params("file"))
	}))

	a.Post("/v1/vector_stores/:id/file_batches", s.auth, h(func(ctx context.Context, v *vectorstore.Service, k *teamKey, c *fiber.Ctx, b []byte) (any, error) {
		return v.CreateBatch(ctx, who(k), c.Params("id"), b)
	}))
	a.Get("/v1/vector_stores/:id/file_batches/:batch", s.auth, h(func(ctx context.Context, v *vectorstore.Service, k *teamKey, c *fiber.Ctx, _ []byte) (any, error) {
		b, err := v.GetBatch(ctx, k.team, c.Params("id"), c.Params("batch"))
		if err == nil && b.Status == vectorstore.StatusInProgress {
			c.Set("openai-poll-after-ms", pollAfterMs)
		}
		return b, err
	}))
	a.Post("/v1/vector_stores/:id/file_batches/:batch/cancel", s.auth, h(func(ctx context.Context, v *vectorstore.Service, k *teamKey, c *fiber.Ctx, _ []byte) (any, error) {
		return v.CancelBatch(ctx, k.team, c.Params("id"), c.Params("batch"))
	}))
	a.Get("/v1/vector_stores/:id/file_batches/:batch/files", s.auth, h(func(ctx context.Context, v *vectorstore.Service, k *teamKey, c *fiber.Ctx, _ []byte) (any, error) {
		return v.ListBatchFiles(ctx, k.team, c.Params("id"), c.Params("batch"), c.Query("filter"), vsListQuery(c))
	}))
}
