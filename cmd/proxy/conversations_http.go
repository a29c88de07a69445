package main

import (
	"context"

	"github.com/gofiber/fiber/v2"

	"llmproxy/memory"
)

// The Conversations API (issue 13): OpenAI's shapes, logic in memory;
// this file only moves bytes between fiber and memory.Memory.

func (s *Server) conversationRoutes() {
	a := s.app
	a.Post("/v1/conversations", s.auth, s.convHandler(func(ctx context.Context, m *memory.Memory, team string, c *fiber.Ctx, body []byte) (any, error) {
		return m.CreateConversation(ctx, team, body)
	}))
	a.Get("/v1/conversations", s.auth, s.convHandler(func(ctx context.Context, m *memory.Memory, team string, c *fiber.Ctx, _ []byte) (any, error) {
		return m.ListConversations(ctx, team, listQuery(c))
	}))
	a.Get("/v1/conversations/:id", s.auth, s.convHandler(func(ctx context.Context, m *memory.Memory, team string, c *fiber.Ctx, _ []byte) (any, error) {
		return m.GetConversation(ctx, team, c.Params("id"))
	}))
	a.Post("/v1/conversations/:id", s.auth, s.convHandler(func(ctx context.Context, m *memory.Memory, team string, c *fiber.Ctx, body []byte) (any, error) {
		return m.UpdateConversation(ctx, team, c.Params("id"), body)
	}))
	a.Delete("/v1/conversations/:id", s.auth, s.convHandler(func(ctx context.Context, m *memory.Memory, team string, c *fiber.Ctx, _ []byte) (any, error) {
		return m.DeleteConversation(ctx, team, c.Params("id"))
	}))
	a.Get("/v1/conversations/:id/items", s.auth, s.convHandler(func(ctx context.Context, m *memory.Memory, team string, c *fiber.Ctx, _ []byte) (any, error) {
		return m.ListItems(ctx, team, c.Params("id"), listQuery(c))
	}))
	a.Post("/v1/conversations/:id/items", s.auth, s.convHandler(func(ctx context.Context, m *memory.Memory, team string, c *fiber.Ctx, body []byte) (any, error) {
		return m.AddItems(ctx, team, c.Params("id"), body)
	}))
	a.Get("/v1/conversations/:id/items/:item", s.auth, s.convHandler(func(ctx context.Context, m *memory.Memory, team string, c *fiber.Ctx, _ []byte) (any, error) {
		return m.GetItem(ctx, team, c.Params("id"), c.Params("item"))
	}))
	a.Delete("/v1/conversations/:id/items/:item", s.auth, s.convHandler(func(ctx context.Context, m *memory.Memory, team string, c *fiber.Ctx, _ []byte) (any, error) {
		return m.DeleteItem(ctx, team, c.Params("id"), c.Params("item"))
	}))
}

func listQuery(c *fiber.Ctx) memory.ListQuery {
	return memory.ListQuery{Limit: c.Query("limit"), After: c.Query("after"), Order: c.Query("order")}
}

type convFunc func(ctx context.Context, m *memory.Memory, team string, c *fiber.Ctx, body []byte) (any, error)

// convHandler reads the body (POST), runs f for the caller's team and
// answers its result as JSON; errors go to the ErrorHandler.
func (s *Server) convHandler(f convFunc) fiber.Handler {
	return func(c *fiber.Ctx) error {
		k := c.Locals(localsKey).(*teamKey)
		var body []byte
		if c.Method() == fiber.MethodPost {
			b, err := s.readBody(c)
			if err != nil {
				return err
			}
			body = b
		}
		ctx, cancel := s.requestContext(c, k)
		defer cancel()
		out, err := f(ctx, s.memory, k.team, c, body)
		if err != nil {
			return err
		}
		return c.JSON(out)
	}
}
