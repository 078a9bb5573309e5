// The web UI's build: the app (index.html) and the API docs page (docs.html) into the
// gateway package's web/ folder, which the gateway serves and git keeps (so running the
// platform needs no Node). tests/browser/test_build.py rebuilds and compares.
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { defineConfig, type Plugin } from "vite";

const outDir = process.env.MTE_WEB_OUT_DIR || "../src/gateway_service/web";

// Swagger UI comes from the swagger-ui-dist package, copied as it is (it is already built).
function vendoredSwaggerUi(): Plugin {
  const files = ["swagger-ui-bundle.js", "swagger-ui.css"];
  return {
    name: "vendored-swagger-ui",
    generateBundle() {
      for (const name of files) {
        const path = fileURLToPath(new URL(`node_modules/swagger-ui-dist/${name}`, import.meta.url));
        this.emitFile({ type: "asset", fileName: `swagger/${name}`, source: readFileSync(path) });
      }
    },
  };
}

export default defineConfig({
  base: "/",
  publicDir: "public",
  plugins: [vendoredSwaggerUi()],
  oxc: { jsx: { runtime: "automatic", importSource: "preact" } },
  build: {
    outDir,
    emptyOutDir: true,
    modulePreload: { polyfill: false },
    sourcemap: false,
    chunkSizeWarningLimit: 400,
    rollupOptions: {
      input: {
        app: fileURLToPath(new URL("index.html", import.meta.url)),
        docs: fileURLToPath(new URL("docs.html", import.meta.url)),
      },
    },
  },
});
