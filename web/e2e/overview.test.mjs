// End-to-end: the overview (综合态势) against a fresh demo district.
// A transport regulator sees the vehicle totals the live list has and the charts drawn; a family
// doctor sees no vehicle panels, and an urgent blood pressure from a patient's monitor counts in
// today's and the open alarms without a reload (a health alarm: the transport regulator does not
// see it). Exits non-zero on the first failure.
// Usage: node e2e/overview.test.mjs BASE_URL DATA_DIR
import { base, deviceSecret, token, get, launch, newPage, signIn, signOut, step } from './lib.mjs'

/// A headline figure's number (the tiles are groups named after their figure).
async function figure(page, name) {
  const text = (await page.getByRole('group', { name, exact: true }).locator('strong').textContent()).trim()
  return Number(text)
}

/// Waits until `check()` holds, asking again every half second; fails with `what` after `ms`.
async function until(what, check, ms = 20_000) {
  const end = Date.now() + ms
  let last
  while (Date.now() < end) {
    last = await check()
    if (last === true) return
    await new Promise((r) => setTimeout(r, 500))
  }
  throw new Error(`${what} (last: ${JSON.stringify(last)})`)
}

/// Fails unless the chart whose accessible name starts with `title` is drawn on a canvas with a
/// size.
async function drawn(page, title) {
  const canvas = page.locator(`[role="img"][aria-label^="${title}"] canvas`).first()
  await canvas.waitFor()
  const box = await canvas.boundingBox()
  if (!box || box.width < 50 || box.height < 50) throw new Error(`the chart ${title} has no size: ${JSON.stringify(box)}`)
}

const browser = await launch()
try {
  const page = await newPage(browser)

  step('a transport regulator signs in and sees the overview')
  await page.goto(`${base}/`)
  await page.waitForURL(/\/login/)
  await signIn(page, 'jt.liu')
  await page.waitForURL(`${base}/`)
  await page.getByRole('heading', { name: '综合态势' }).waitFor()
  await page.getByRole('group', { name: '车辆总数', exact: true }).waitFor()

  step('the vehicle totals are those of the live list')
  const jt = await token('jt.liu')
  const live = await get(jt, '/api/transport/live')
  if (!live.length) throw new Error('the demo district has no vehicles')
  await until('the total is the live list\'s', async () => {
    const total = await figure(page, '车辆总数')
    return total === live.length || total
  })
  // Terminals come and go: the page and the API agree at some moment.
  await until('online and offline are the live list\'s', async () => {
    const apiOnline = (await get(jt, '/api/transport/live')).filter((v) => v.online).length
    const [online, offline] = [await figure(page, '在线车辆'), await figure(page, '离线车辆')]
    return (online === apiOnline && offline === live.length - apiOnline) || { online, offline, apiOnline }
  })

  step('the charts are drawn')
  for (const title of ['车辆在线情况（按类型）', '今日报警时段分布', '企业百车报警数（今日）', '考核指标（今日）']) await drawn(page, title)
  await page.getByRole('status').filter({ hasText: '实时' }).waitFor()

  step('the regulator\'s overview fits a 1366×768 window without scrolling')
  const [scrollHeight, innerHeight] = await page.evaluate(() => [document.documentElement.scrollHeight, window.innerHeight])
  if (scrollHeight > innerHeight) throw new Error(`the page scrolls: ${scrollHeight} > ${innerHeight}`)

  step('a family doctor sees alarms only')
  await signOut(page)
  await signIn(page, 'dr.wu')
  await page.waitForURL(`${base}/`)
  await page.getByRole('group', { name: '今日报警', exact: true }).waitFor()
  await page.getByRole('status').filter({ hasText: '实时' }).waitFor()
  await drawn(page, '今日报警时段分布')
  if (await page.getByRole('group', { name: '车辆总数', exact: true }).count()) throw new Error('a clinician sees the vehicle figures')
  if (await page.getByRole('heading', { name: '车辆在线情况（按类型）' }).count()) throw new Error('a clinician sees the vehicle chart')
  if (await page.getByRole('heading', { name: '考核指标（今日）' }).count()) throw new Error('a clinician sees the assessment')

  step('an urgent reading counts in today\'s and the open alarms without a reload')
  const today = await figure(page, '今日报警')
  const open = await figure(page, '待处置报警')
  await page.evaluate(() => (window.notReloaded = true))
  const auth = 'Basic ' + Buffer.from(`YC-BP-0001:${deviceSecret('YC-BP-0001')}`).toString('base64')
  const resp = await fetch(`${base}/api/iot/ingest`, {
    method: 'POST',
    headers: { authorization: auth, 'content-type': 'application/json' },
    body: JSON.stringify({ readings: { bp_systolic: 196 } }),
  })
  if (resp.status !== 200) throw new Error(`ingest answered ${resp.status}: ${await resp.text()}`)
  await until('today\'s and the open alarms went up', async () => {
    const now = [await figure(page, '今日报警'), await figure(page, '待处置报警')]
    return (now[0] > today && now[1] > open) || now
  })
  if (!(await page.evaluate(() => window.notReloaded))) throw new Error('the page was reloaded')
  await drawn(page, '今日报警类型')
  await drawn(page, '今日报警级别')
  const kinds = await page.locator('[role="img"][aria-label^="今日报警类型"]').getAttribute('aria-label')
  if (!kinds.includes('收缩压危急')) throw new Error(`the kinds chart does not have the alarm: ${kinds}`)

  step('the transport regulator does not see the health alarm')
  const seen = await get(jt, '/api/alarms?kind=bp_systolic_urgent&limit=1')
  if (seen.total) throw new Error('a transport regulator sees a patient\'s alarm')

  page.check()
  console.log('overview end-to-end: ok')
} finally {
  await browser.close()
}
