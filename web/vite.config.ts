import { defineConfig } from 'vite'
import vue from '@vitejs/plugin-vue'

declare const process: { env: Record<string, string | undefined> }

// `npm run dev` serves the console on :5173 and sends the API (and its WebSockets) to a platform
// running on :8080 (`cargo run --release -- serve --demo`), or at WUQING_API. `npm run build` writes dist/, which the
// wuqing binary embeds when it is built afterwards.
export default defineConfig({
  plugins: [vue()],
  build: { outDir: 'dist', assetsDir: 'assets', sourcemap: false },
  server: {
    proxy: {
      '/api': { target: process.env.WUQING_API ?? 'http://127.0.0.1:8080', ws: true, changeOrigin: false },
    },
  },
})
