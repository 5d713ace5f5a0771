# syntax=docker/dockerfile:1
# check=error=true
#
# kpulse's production image: a static binary on distroless, running as non-root.
#
#   docker buildx build --platform linux/amd64,linux/arm64 --build-arg VERSION=v1.2.3 -t kpulse .
#
# The compiler always runs on the build machine's own platform (BUILDPLATFORM) and cross-compiles
# for each TARGETOS/TARGETARCH, so a multi-arch build needs no emulation.

ARG GO_VERSION=1.26

FROM --platform=$BUILDPLATFORM golang:${GO_VERSION} AS build
WORKDIR /src
# Modules first: this layer is reused until go.mod or go.sum change.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod \
    go mod download
COPY cmd/ cmd/
COPY internal/ internal/
ARG TARGETOS
ARG TARGETARCH
ARG VERSION=dev
# The same command as `make build` (see Makefile); deploy/image_test.go checks they agree.
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -trimpath -ldflags "-s -w -X github.com/kpulse/kpulse/internal/app.Version=$VERSION" -o /out/kpulse ./cmd/kpulse

FROM gcr.io/distroless/static:nonroot
ARG VERSION=dev
ARG REVISION=unknown
LABEL org.opencontainers.image.title="kpulse" \
      org.opencontainers.image.description="Watches a Kubernetes cluster and tells you, once, when a workload breaks and when it recovers" \
      org.opencontainers.image.source="https://github.com/kpulse/kpulse" \
      org.opencontainers.image.url="https://github.com/kpulse/kpulse" \
      org.opencontainers.image.documentation="https://github.com/kpulse/kpulse#readme" \
      org.opencontainers.image.version="$VERSION" \
      org.opencontainers.image.revision="$REVISION"
COPY --from=build /out/kpulse /kpulse
# nonroot (65532) of distroless, by number so that Kubernetes' runAsNonRoot can verify it.
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/kpulse"]
