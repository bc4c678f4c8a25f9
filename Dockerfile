# One image for every target: HOMES_SERVICES picks auth, home, sender or
# gateway (or several); `homes migrate up` is the one-shot migration job.
# Build: docker build -t homes .

FROM golang:1.26-bookworm AS build
WORKDIR /src
ENV CGO_ENABLED=0 GOFLAGS=-buildvcs=false
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    go build -trimpath -ldflags="-s -w" -o /out/homes ./cmd/homes
# The data folder (generated signing key) must belong to the runtime user.
RUN mkdir -p /out/data

# distroless/static: CA certificates, tzdata, /etc/passwd with "nonroot"
# (65532), no shell; a few MB besides the binary.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/homes /homes
COPY --from=build --chown=65532:65532 /out/data /data
USER 65532:65532
ENV HOMES_ADDR=:8080 HOMES_DATA_DIR=/data
EXPOSE 8080
# compose overrides this per target (readiness of the right port).
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD ["/homes", "probe", "http://127.0.0.1:8080/healthz"]
ENTRYPOINT ["/homes"]
CMD ["serve"]
