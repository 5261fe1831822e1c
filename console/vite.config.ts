import { defineConfig } from "vite";

// The console is served by ibmaild under /console/, from files embedded in
// the binary; everything it loads comes from there (no other origin).
export default defineConfig({
  base: "/console/",
  build: { outDir: "dist", emptyOutDir: true, assetsInlineLimit: 0, modulePreload: { polyfill: false } },
});
