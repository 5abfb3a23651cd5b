// End-to-end: track playback (轨迹回放). An operator opens a vehicle of theirs that the demo's
// simulator drives, goes from its detail to its track, sees the summary, the map and the speed
// chart, plays the track, exports it as GPX and CSV; another enterprise's vehicle's track, typed
// into the address bar, is the API's not-found message, not a track.
// Usage: node e2e/track.test.mjs BASE_URL DATA_DIR
import { base, token, get, launch, newPage, signIn, step } from './lib.mjs'

const DAY = 86_400_000
/// The last 24 hours and the next hour, as the API takes a range.
const recent = () => `from=${new Date(Date.now() - DAY).toISOString()}&to=${new Date(Date.now() + 3600_000).toISOString()}`

step('a simulated vehicle of the operator has a track of at least 3 positions')
const tok = await token('shunda.zhao')
// The demo simulator drives the terminals numbered 138…; 139… are left for real terminals.
const { items } = await get(tok, '/api/transport/vehicles?limit=100')
const simulated = items.filter((v) => v.terminal_phone?.startsWith('138'))
if (!simulated.length) throw new Error('the operator has no simulated vehicle')
const vehicle = simulated[0]
const pointsNow = async () => (await get(tok, `/api/transport/vehicles/${vehicle.id}/track?${recent()}`)).summary.points
for (let i = 0; (await pointsNow()) < 3; i++) {
  if (i === 120) throw new Error(`${vehicle.plate} has fewer than 3 positions after two minutes`)
  await new Promise((r) => setTimeout(r, 1000))
}
const foreign = (await get(await token('bus.sun'), '/api/transport/vehicles?limit=1')).items[0]

const browser = await launch()
try {
  const page = await newPage(browser)

  step('the operator signs in and goes from the vehicle\'s detail to its track playback')
  await page.goto(`${base}/vehicles/${vehicle.id}`)
  await page.waitForURL(/\/login/)
  await signIn(page, 'shunda.zhao')
  await page.waitForURL(`${base}/vehicles/${vehicle.id}`)
  await page.getByRole('link', { name: '轨迹回放' }).click()
  await page.waitForURL(`${base}/vehicles/${vehicle.id}/track`)
  await page.getByRole('heading', { name: `轨迹回放 · ${vehicle.plate}` }).waitFor()

  step('the last 24 hours load with their point count and summary')
  // Today's track (the default range) first, possibly empty after Beijing midnight.
  await page.getByRole('button', { name: '播放' }).or(page.getByText('该时段无定位数据')).waitFor()
  const loaded = page.waitForResponse((r) => r.url().includes(`/vehicles/${vehicle.id}/track?`) && r.ok())
  await page.getByRole('button', { name: '近 24 小时' }).click()
  await page.waitForURL(/[?&]from=/)
  await loaded
  const count = page.getByTestId('track-points')
  await count.waitFor()
  const shown = Number(await count.textContent())
  const stored = await pointsNow()
  if (!(shown >= 3 && shown <= stored)) throw new Error(`the page shows ${shown} positions, the API has ${stored}`)
  const summary = page.getByRole('region', { name: '轨迹统计' })
  for (const label of ['行驶距离', '最高速度', '停车次数', '行驶时长']) await summary.getByText(label).waitFor()
  if (!/^\d+\.\d km$/.test(await page.getByTestId('track-distance').textContent())) throw new Error('no distance')

  step('the track is on the map, from its start to its end')
  await page.getByRole('region', { name: '轨迹地图' }).locator('canvas').waitFor()
  await page.getByRole('button', { name: /^起点/ }).waitFor()
  await page.getByRole('button', { name: /^终点/ }).waitFor()

  step('the speed chart is drawn')
  await page.getByRole('img', { name: /速度曲线/ }).locator('canvas').waitFor()

  step('play advances the readout\'s time, pause stops it')
  const time = page.getByTestId('playback-time')
  const before = await time.textContent()
  const slider = page.getByLabel('回放位置')
  if ((await slider.inputValue()) !== '0') throw new Error('playback does not start at the first position')
  await page.getByRole('button', { name: '播放' }).click()
  await page.waitForFunction(
    (t) =>
      document.querySelector('[data-testid="playback-time"]')?.textContent !== t &&
      Number(document.querySelector('input[type="range"]')?.value) >= 1,
    before,
  )
  await page.getByRole('button', { name: '暂停' }).click()
  // Paused once the button offers to play again; a step already scheduled may land with it.
  await page.getByRole('button', { name: '播放' }).waitFor()
  await page.waitForTimeout(200)
  const paused = await time.textContent()
  await page.waitForTimeout(500)
  if ((await time.textContent()) !== paused) throw new Error('the readout moved while paused')

  step('the GPX and CSV exports answer within the page\'s session')
  const download = (name) =>
    page.getByRole('link', { name }).evaluate(async (a) => {
      const r = await fetch(a.href)
      return { status: r.status, type: r.headers.get('content-type'), body: await r.text() }
    })
  const gpx = await download('导出 GPX')
  if (gpx.status !== 200 || !gpx.type.startsWith('application/gpx+xml') || !gpx.body.includes('<trkpt'))
    throw new Error(`GPX export: ${gpx.status} ${gpx.type}`)
  const csv = await download('导出 CSV')
  if (csv.status !== 200 || !csv.type.startsWith('text/csv') || !csv.body.startsWith('plate,time,'))
    throw new Error(`CSV export: ${csv.status} ${csv.type}`)
  if (csv.body.trim().split('\n').length - 1 < shown) throw new Error('the CSV export has fewer positions than the track')

  step('another enterprise\'s vehicle\'s track is not found, and no track is shown')
  await page.goto(`${base}/vehicles/${foreign.id}/track`)
  await page.getByRole('alert').filter({ hasText: 'not found' }).waitFor()
  if (await page.getByText(foreign.plate).count()) throw new Error('another enterprise\'s plate is shown')
  if (await page.getByTestId('track-points').count()) throw new Error('another enterprise\'s track is shown')
  if (await page.getByRole('button', { name: '播放' }).count())
    throw new Error('playback is offered for another enterprise\'s vehicle')

  page.check()
  console.log('track end-to-end: ok')
} finally {
  await browser.close()
}
