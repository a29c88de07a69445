# llmproxy build/test entry points. `make test` is the one test command (CI runs it).
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := test

GO        ?= go
PKGS      ?= ./...
FUZZTIME  ?= 30s
# Per test binary; a hang fails fast instead of eating the CI budget.
TEST_TIMEOUT ?= 8m
CONFIG    ?= configs/example.yaml
BIN       ?= bin/llmproxy

# Integration tests (build tag `integration`) talk to the real services
# that scripts/services.sh brings up.
LLMPROXY_TEST_REDIS    ?= redis://127.0.0.1:6379/15
LLMPROXY_TEST_DATABASE ?= postgres://postgres@127.0.0.1:5432/test?sslmode=disable
# The official Node SDK, installed by scripts/services.sh, for the Node e2e tests.
LLMPROXY_TEST_NODE_MODULES ?= $(CURDIR)/.cache/node-sdk/node_modules
# The Jaeger binary of the tracing e2e test: empty means scripts/jaeger.sh
# builds it (once, from tools/go.mod) under .cache/jaeger/.
LLMPROXY_TEST_JAEGER ?=

GOFILES_CMD = find . \( -name .git -o -name node_modules -o -name vendor -o -name testdata \) -prune -o -name '*.go' -print0

# The steps of `make test` must run in order, even under `make -j`.
.NOTPARALLEL:

.PHONY: test services fmt-check vet unit integration run build fuzz bench clean

# integration runs every test (untagged ones too) with the services up;
# unit is the quick run without them.
test: services fmt-check vet integration

services:
	bash scripts/services.sh

fmt-check:
	@out=$$($(GOFILES_CMD) | xargs -0 -r gofmt -l); \
	if [ -n "$$out" ]; then echo "gofmt: these files need 'gofmt -w':"; echo "$$out"; exit 1; fi; \
	echo "gofmt: ok"

vet:
	$(GO) vet $(PKGS)
	$(GO) vet -tags integration $(PKGS)

unit: export LLMPROXY_TEST_NODE_MODULES := $(LLMPROXY_TEST_NODE_MODULES)
unit:
	$(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) $(PKGS)

integration: export LLMPROXY_TEST_REDIS := $(LLMPROXY_TEST_REDIS)
integration: export LLMPROXY_TEST_DATABASE := $(LLMPROXY_TEST_DATABASE)
integration: export LLMPROXY_TEST_NODE_MODULES := $(LLMPROXY_TEST_NODE_MODULES)
integration:
	jaeger='$(LLMPROXY_TEST_JAEGER)'; [ -n "$$jaeger" ] || jaeger=$$(GO=$(GO) bash scripts/jaeger.sh); \
	LLMPROXY_TEST_JAEGER="$$jaeger" $(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) -tags integration $(PKGS)

run:
	$(GO) run ./cmd/proxy -config $(CONFIG)

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "-s -w" -o $(BIN) ./cmd/proxy

fuzz:
	FUZZTIME=$(FUZZTIME) GO=$(GO) PKGS='$(PKGS)' bash scripts/fuzz.sh

bench:
	$(GO) test -run '^$$' -bench . -benchmem $(PKGS)

clean:
	rm -rf bin/
