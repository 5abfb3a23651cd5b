// How smoothly the live map runs: signs in on a running platform, opens /map, waits until the
// vehicles are on it, then records every animation frame (requestAnimationFrame) for SECONDS
// while the fleet moves, and prints JSON: frames per second (median), 95th percentile and longest
// frame, long tasks, the vehicles on the map and how many vehicle changes the stream delivered
// meanwhile. Headless Chromium draws WebGL on the CPU (SwiftShader): a real GPU does better.
// Usage: node e2e/map-perf.mjs BASE_URL DATA_DIR [USER=jt.liu] [SECONDS=30] [WIDTH=1920] [HEIGHT=1080]
import { base, launch, signIn } from './lib.mjs'

const [user = 'jt.liu', seconds = '30', width = '1920', height = '1080'] = process.argv.slice(4)

const browser = await launch()
try {
  const page = await browser.newPage({ viewport: { width: Number(width), height: Number(height) } })
  const errors = []
  page.on('pageerror', (e) => errors.push(String(e)))

  // Vehicle changes the stream delivers (counted only while measuring).
  let measuring = false
  let changes = 0
  page.on('websocket', (ws) => {
    if (!ws.url().includes('/api/transport/stream')) return
    ws.on('framereceived', (f) => {
      if (!measuring || typeof f.payload !== 'string') return
      const m = JSON.parse(f.payload)
      if (m.type === 'changes') changes += m.vehicles.length
    })
  })

  await page.goto(`${base}/map`)
  await page.waitForURL(/\/login/)
  await signIn(page, user)
  await page.waitForURL(`${base}/map`)
  const count = page.getByTestId('map-count')
  await count.waitFor({ timeout: 120_000 })
  const end = Date.now() + 120_000
  while (Number(await count.textContent()) === 0 && Date.now() < end) await page.waitForTimeout(500)
  await page.waitForTimeout(3000) // tiles and clusters settle

  measuring = true
  const frames = await page.evaluate(
    (ms) =>
      new Promise((resolve) => {
        const long = []
        const obs = new PerformanceObserver((l) => long.push(...l.getEntries().map((e) => e.duration)))
        obs.observe({ type: 'longtask' })
        const times = []
        let last = performance.now()
        const stop = last + ms
        requestAnimationFrame(function tick(t) {
          times.push(t - last)
          last = t
          if (t < stop) return void requestAnimationFrame(tick)
          obs.disconnect()
          resolve({ times, long })
        })
      }),
    Number(seconds) * 1000,
  )
  measuring = false

  const sorted = [...frames.times].sort((a, b) => a - b)
  const at = (q) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]
  const round = (x) => Math.round(x * 10) / 10
  console.log(
    JSON.stringify({
      seconds: Number(seconds),
      viewport: `${width}x${height}`,
      frames: sorted.length,
      fps_median: round(1000 / at(0.5)),
      frame_ms_median: round(at(0.5)),
      frame_ms_p95: round(at(0.95)),
      frame_ms_max: round(sorted[sorted.length - 1]),
      long_tasks: frames.long.length,
      long_task_ms_total: round(frames.long.reduce((a, b) => a + b, 0)),
      vehicles_on_map: Number(await count.textContent()),
      vehicles_online: Number(await page.getByTestId('map-online').textContent()),
      vehicle_changes_streamed: changes,
      page_errors: errors,
    }),
  )
} finally {
  await browser.close()
}
