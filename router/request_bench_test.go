package router

import (
	"strings"
	"testing"
)

// benchBody is a realistic ~2 KB chat request: a system prompt, a short
// history, two tools and the usual sampling fields.
var benchBody = []byte(`{"model":"gpt-4o-mini","messages":[` +
	`{"role":"system","content":"You are a helpful assistant for an online store. Answer briefly and use the tools when the user asks about orders or stock. ` + strings.Repeat("Be polite. ", 20) + `"},` +
	`{"role":"user","content":"Where is my order 12345? It was supposed to arrive yesterday."},` +
	`{"role":"assistant","content":null,"tool_calls":[{"id":"call_abc123","type":"function","function":{"name":"get_order","arguments":"{\"order_id\":\"12345\"}"}}]},` +
	`{"role":"tool","tool_call_id":"call_abc123","content":"{\"status\":\"shipped\",\"carrier\":\"UPS\",\"eta\":\"2026-12-03\"}"},` +
	`{"role":"user","content":"And do you still have the blue one in size M?"}],` +
	`"tools":[{"type":"function","function":{"name":"get_order","description":"Look up an order by its id and return its status, carrier and ETA.","parameters":{"type":"object","properties":{"order_id":{"type":"string","description":"The order id."}},"required":["order_id"]}}},` +
	`{"type":"function","function":{"name":"check_stock","description":"Check whether a product variant is in stock in the warehouse nearest to the user.","parameters":{"type":"object","properties":{"sku":{"type":"string"},"color":{"type":"string","enum":["red","blue","green"]},"size":{"type":"string","enum":["S","M","L","XL"]}},"required":["sku"]}}}],` +
	`"tool_choice":"auto","temperature":0.7,"top_p":1,"max_tokens":512,"user":"user-42","stream":false}`)

func BenchmarkParseChatRequest(b *testing.B) {
	b.SetBytes(int64(len(benchBody)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseChatRequest(benchBody); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkUpstreamBody(b *testing.B) {
	for _, tc := range []struct {
		name   string
		stream bool
	}{{"plain", false}, {"stream", true}} {
		b.Run(tc.name, func(b *testing.B) {
			req, err := ParseChatRequest(benchBody)
			if err != nil {
				b.Fatal(err)
			}
			req.Stream = tc.stream
			b.SetBytes(int64(len(benchBody)))
			b.ReportAllocs()
			for b.Loop() {
				if len(req.UpstreamBody("gpt-4o-mini-2024-07-18")) == 0 {
					b.Fatal("empty body")
				}
			}
		})
	}
}
