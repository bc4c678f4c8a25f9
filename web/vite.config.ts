import { defineConfig } from "vite";

// The build goes to dist/, which the Go package `web` embeds (embed.go).
// Asset names carry a content hash, so the Go handler can cache them forever.
export default defineConfig({
  base: "/",
  build: {
    outDir: "dist",
    emptyOutDir: true,
    assetsDir: "assets",
    sourcemap: false,
    target: "es2022",
    // validate_pb (the protovalidate rules the descriptors reference) is big.
    chunkSizeWarningLimit: 1024,
  },
  server: {
    // `npm run dev` against a running `go run ./cmd/homes serve`.
    proxy: {
      "^/homes\\.": { target: "http://127.0.0.1:8080", changeOrigin: true },
    },
  },
});
