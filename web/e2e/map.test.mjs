// End-to-end: the live monitoring map (实时监控) against a fresh `serve --demo`, whose simulated
// fleet reports over JT/T 808 every 10 s. A transport regulator opens the map: the vehicles
// appear, a followed vehicle moves, a plate search opens its card, a text read aloud (TTS) and a
// position query reach its simulated terminal, the enterprise filter narrows the map. Then a
// dangerous goods operator sees exactly their enterprise's vehicles. Exits non-zero on the first
// failure. Usage: node e2e/map.test.mjs BASE_URL DATA_DIR
import { base, token, get, launch, newPage, signIn, signOut, step } from './lib.mjs'

/// Polls `probe` until it returns a truthy value; throws `what` after `ms`.
async function until(what, ms, probe) {
  const end = Date.now() + ms
  for (;;) {
    const v = await probe()
    if (v) return v
    if (Date.now() > end) throw new Error(`timed out: ${what}`)
    await new Promise((r) => setTimeout(r, 500))
  }
}

const mapCount = async (page) => Number((await page.getByTestId('map-count').textContent()).trim())
/// Vehicles with a position, as the API gives them to the bearer of `tok`.
const placed = async (tok, query = '') => (await get(tok, `/api/transport/live${query}`)).filter((v) => v.position)

const regulator = await token('jt.liu')
const operator = await token('shunda.zhao')
const shunda = (await get(operator, '/api/orgs?kind=enterprise')).items[0]

const browser = await launch()
try {
  const page = await newPage(browser)

  step('the regulator opens the map after signing in')
  await page.goto(`${base}/map`)
  await page.waitForURL(/\/login\?next=/)
  await signIn(page, 'jt.liu')
  await page.waitForURL(`${base}/map`)

  step('the fleet appears on the map, live')
  await page.getByText('实时', { exact: true }).waitFor({ timeout: 30_000 })
  await until('vehicles on the map', 60_000, async () => (await page.getByTestId('map-count').count()) && (await mapCount(page)) > 0)
  await page.getByTestId('map-legend').getByText('行驶').waitFor()

  step('a plate search opens the card of a moving vehicle')
  const moving = await until('a moving vehicle', 60_000, async () =>
    (await placed(regulator)).find((v) => v.online && v.position.speed_kmh > 20 && v.class !== 'city_bus'),
  )
  const search = page.getByRole('combobox', { name: '搜索车牌' })
  await search.fill(moving.plate)
  await page.getByRole('option', { name: new RegExp(moving.plate) }).click()
  const card = page.getByTestId('vehicle-card')
  await card.getByRole('heading', { name: moving.plate }).waitFor()
  await card.getByText('所属企业').waitFor()

  step('followed, it moves on the map within a minute')
  await card.getByRole('button', { name: '跟随' }).click()
  await card.locator('[aria-pressed="true"]').waitFor()
  const before = await card.getByTestId('card-position').textContent()
  await until('the followed vehicle to move', 60_000, async () => (await card.getByTestId('card-position').textContent()) !== before)

  step('the vehicle drawn at the centre of the map, where it was followed to, opens its card when clicked')
  await page.waitForTimeout(1500) // the map eases to the vehicle's new position
  const map = await page.getByRole('region', { name: '车辆分布地图' }).boundingBox()
  await card.getByRole('button', { name: '关闭车辆卡片' }).click()
  await card.waitFor({ state: 'detached' })
  await page.mouse.click(map.x + map.width / 2, map.y + map.height / 2)
  const plates = new Set((await placed(regulator)).map((v) => v.plate))
  const clicked = (await card.getByRole('heading', { level: 2 }).textContent({ timeout: 5000 })).trim()
  if (!plates.has(clicked)) throw new Error(`the card of a clicked vehicle shows ${clicked}`)

  step('a text read aloud reaches its terminal')
  await search.fill(moving.plate)
  await page.getByRole('option', { name: new RegExp(moving.plate) }).click()
  await card.getByRole('heading', { name: moving.plate }).waitFor()
  const text = card.getByTestId('cmd-text')
  await text.getByLabel('文本信息').fill('请注意安全驾驶，前方路段施工')
  await text.getByLabel('语音播报（TTS）').check()
  await text.getByRole('button', { name: '发送' }).click()
  await text.getByRole('status').filter({ hasText: '已送达' }).waitFor({ timeout: 30_000 })

  step('and so does a position query')
  const query = card.getByTestId('cmd-query')
  await query.getByRole('button', { name: '查询位置' }).click()
  await query.getByRole('status').filter({ hasText: '已送达' }).waitFor({ timeout: 30_000 })

  step('the card closes')
  await card.getByRole('button', { name: '关闭车辆卡片' }).click()
  await card.waitFor({ state: 'detached' })

  step('the enterprise filter shows one enterprise\'s vehicles')
  await page.getByLabel('企业', { exact: true }).selectOption(shunda.id)
  await until('the enterprise\'s vehicles only', 30_000, async () =>
    (await mapCount(page)) === (await placed(regulator, `?org_id=${shunda.id}`)).length,
  )
  await page.getByLabel('企业', { exact: true }).selectOption('')

  step('an operator sees exactly their enterprise\'s vehicles')
  await signOut(page)
  await signIn(page, 'shunda.zhao')
  await page.waitForURL(`${base}/`)
  await page.getByRole('link', { name: '实时监控' }).click()
  await until('the operator\'s count to match the API', 60_000, async () =>
    (await page.getByTestId('map-count').count()) && (await mapCount(page)) === (await placed(operator)).length,
  )
  if ((await mapCount(page)) === 0) throw new Error('the operator sees no vehicle')
  if (await page.getByLabel('企业', { exact: true }).count()) throw new Error('an operator is offered an enterprise filter')
  const foreign = (await placed(regulator)).find((v) => v.org_id !== shunda.id)
  await page.getByRole('combobox', { name: '搜索车牌' }).fill(foreign.plate)
  await page.getByText('没有匹配的车辆').waitFor()

  page.check()
  console.log('map end-to-end: ok')
} finally {
  await browser.close()
}
