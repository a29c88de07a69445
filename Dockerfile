# syntax=docker/dockerfile:1
# Build:  docker build -t llmproxy .
# Run:    docker run -p 8080:8080 -e LLMPROXY_API_KEY=<your client key> -e OPENAI_API_KEY llmproxy
# The image's config is configs/docker.yaml: no published demo key; the team key is LLMPROXY_API_KEY.

FROM golang:1.26-bookworm AS build
WORKDIR /src
# Dependencies first: this layer is reused until go.mod/go.sum change.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download && go mod verify
COPY . .
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=linux go build -trimpath -ldflags "-s -w" -o /out/llmproxy ./cmd/proxy
# Data dir for the runtime image (distroless has no shell to mkdir/chown there).
RUN mkdir -p /out/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/llmproxy /llmproxy
COPY configs/docker.yaml /etc/llmproxy/config.yaml
COPY --from=build --chown=65532:65532 /out/data /var/lib/llmproxy
ENV LLMPROXY_CONFIG=/etc/llmproxy/config.yaml
# The PDF engine (PDFium in WebAssembly) is compiled on the first PDF a
# process reads (5-20 s of CPU) and cached under the user cache dir: keep it
# on the data volume so a restart reuses it.
ENV XDG_CACHE_HOME=/var/lib/llmproxy/cache
USER 65532:65532
WORKDIR /var/lib/llmproxy
EXPOSE 8080
# No HEALTHCHECK: distroless has no shell or curl. Orchestrators probe GET /health
# (liveness) and GET /ready (readiness) on port 8080 (see deploy/k8s/).
ENTRYPOINT ["/llmproxy"]
CMD ["-config", "/etc/llmproxy/config.yaml", "-listen", "0.0.0.0:8080"]
