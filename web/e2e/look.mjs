// Takes the screenshots of docs/screenshots/ on a running demo district (a fresh `serve --demo`
// that has run for a minute, so that vehicles have tracks): the main pages at 1366×768 as a
// regulator, an operator and the security administrator see them, and the overview and the map
// at 1920×1080 (a wall display).
// Usage: node e2e/look.mjs BASE_URL DATA_DIR OUT_DIR
import { mkdirSync } from 'node:fs'
import { base, token, get, launch, newPage, signIn, signOut, enrolTotp } from './lib.mjs'

const out = process.argv[4]
if (!out) throw new Error('usage: node e2e/look.mjs BASE_URL DATA_DIR OUT_DIR')
mkdirSync(out, { recursive: true })
const browser = await launch()
const settle = (page, ms = 2500) => page.waitForTimeout(ms)
try {
  const page = await newPage(browser)
  await page.goto(`${base}/`)
  await page.waitForURL(/\/login/)
  await page.screenshot({ path: `${out}/login.png` })

  await signIn(page, 'jt.liu')
  await page.waitForURL(`${base}/`)
  await page.getByText('在线车辆').first().waitFor()
  await settle(page)
  await page.screenshot({ path: `${out}/overview.png` })
  for (const [path, name] of [['/map', 'map'], ['/alarms', 'alarms'], ['/vehicles', 'vehicles'], ['/terminals', 'terminals']]) {
    await page.goto(`${base}${path}`)
    await settle(page, 4000)
    await page.screenshot({ path: `${out}/${name}.png` })
  }
  // A bus with a track, played back.
  const op = await token('bus.sun')
  const bus = (await get(op, '/api/transport/live')).find((v) => v.position)
  await page.goto(`${base}/vehicles/${bus.vehicle_id}/track`)
  await settle(page, 4000)
  await page.screenshot({ path: `${out}/track.png` })

  const wall = await newPage(browser, { width: 1920, height: 1080 })
  await wall.goto(`${base}/login`)
  await signIn(wall, 'jt.liu')
  await wall.waitForURL(`${base}/`)
  await settle(wall, 4000)
  await wall.screenshot({ path: `${out}/overview-1920.png` })
  await wall.goto(`${base}/map`)
  await settle(wall, 5000)
  await wall.screenshot({ path: `${out}/map-1920.png` })

  await signOut(page)
  await signIn(page, 'secadmin')
  await enrolTotp(page)
  await page.waitForURL(`${base}/users`)
  await settle(page)
  await page.screenshot({ path: `${out}/users.png` })
  await page.goto(`${base}/security`)
  await settle(page)
  await page.screenshot({ path: `${out}/security.png` })
  page.check()
  wall.check()
} finally {
  await browser.close()
}
