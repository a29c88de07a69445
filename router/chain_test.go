package router

import (
	"context"
	"io"
	"slices"
	"testing"
)

// stage is a middleware that notes its name on every call it sees; with
// embed set it serves embeddings too.
func stage(name string, embed bool, seen *[]string) Middleware {
	return func(next Handler) Handler {
		chat := HandlerFunc(func(ctx context.Context, req *ChatRequest) (Stream, error) {
			*seen = append(*seen, name+":chat")
			return next.Serve(ctx, req)
		})
		e, ok := next.(EmbedHandler)
		if !embed || !ok {
			return chat
		}
		return struct {
			Handler
			EmbedHandler
		}{chat, EmbedHandlerFunc(func(ctx context.Context, req *EmbedRequest) (*EmbedResponse, error) {
			*seen = append(*seen, name+":embed")
			return e.ServeEmbed(ctx, req)
		})}
	}
}

type innermost struct{ seen *[]string }

func (h innermost) Serve(context.Context, *ChatRequest) (Stream, error) {
	*h.seen = append(*h.seen, "router:chat")
	return nil, io.EOF
}

func (h innermost) ServeEmbed(context.Context, *EmbedRequest) (*EmbedResponse, error) {
	*h.seen = append(*h.seen, "router:embed")
	return &EmbedResponse{}, nil
}

// TestChainServesEmbeddings: one chain serves both operations. Chat goes
// through every stage in order; embeddings through the stages that serve
// them and past the chat-only ones (memory, rag).
func TestChainServesEmbeddings(t *testing.T) {
	var seen []string
	h := Chain(innermost{&seen}, stage("usage", true, &seen), stage("memory", false, &seen),
		stage("rag", false, &seen), stage("budget", true, &seen))
	_, _ = h.Serve(context.Background(), &ChatRequest{})
	if want := []string{"usage:chat", "memory:chat", "rag:chat", "budget:chat", "router:chat"}; !slices.Equal(seen, want) {
		t.Errorf("chat went through %v; want %v", seen, want)
	}
	e, ok := h.(EmbedHandler)
	if !ok {
		t.Fatal("Chain(router, ...) is not an EmbedHandler")
	}
	seen = nil
	if _, err := e.ServeEmbed(context.Background(), &EmbedRequest{}); err != nil {
		t.Fatal(err)
	}
	if want := []string{"usage:embed", "budget:embed", "router:embed"}; !slices.Equal(seen, want) {
		t.Errorf("embeddings went through %v; want %v", seen, want)
	}
}

// TestChainChatOnly: a chain around a chat-only handler stays chat-only,
// so nobody can call embeddings that would skip a stage.
func TestChainChatOnly(t *testing.T) {
	var seen []string
	h := Chain(HandlerFunc(func(context.Context, *ChatRequest) (Stream, error) { return nil, io.EOF }), stage("budget", true, &seen))
	if _, ok := h.(EmbedHandler); ok {
		t.Error("a chain around a chat-only handler claims to serve embeddings")
	}
}
