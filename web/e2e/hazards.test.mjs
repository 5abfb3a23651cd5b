// End-to-end: hazard rectification (隐患整改) from the bureau to the enterprise and back, against a
// fresh `serve --demo`. The transport regulator records a hazard at 武清公交 with a deadline and an
// inspection record attached (so the notice goes out at once); the bus company's operator finds it
// in its inbox, downloads the evidence and reports the rectification with two files; the
// regulator returns it with a note and a new deadline; the operator reports again; the regulator
// passes it. At each step the state in the list and in the drawer, the inboxes, and the history
// timeline (its steps in order, notes and files) are checked in the page, and a file downloads
// as an attachment. Then the bus company registers a driver (a wrong citizen ID refused under
// the field) and the vehicles they drive, and the regulator reads the expiry board: the expired
// first and red, a kind and an enterprise filter, the counts as the API gives them, an xlsx export.
// Usage: node e2e/hazards.test.mjs BASE_URL DATA_DIR
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { base, token, get, launch, newPage, signIn, signOut, step } from './lib.mjs'

const fail = (what) => {
  throw new Error(what)
}
const expect = (cond, what) => cond || fail(what)

/// A date `n` days from today in Beijing, YYYY-MM-DD.
const inDays = (n) => new Date(Date.now() + 8 * 3600_000 + n * 86_400_000).toISOString().slice(0, 10)

/// A GB 11643 citizen ID (invented: region 120114, the given birth date and sequence number).
function citizenId(birth, seq) {
  const w = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
  const body = `120114${birth}${seq}`
  const sum = [...body].reduce((s, d, i) => s + Number(d) * w[i], 0)
  return body + '10X98765432'[sum % 11]
}

// The evidence: a text record and a (tiny, valid) PNG photo.
const dir = mkdtempSync(join(tmpdir(), 'wq-hazard-'))
const inspection = join(dir, '检查记录.txt')
writeFileSync(inspection, '2 号车灭火器压力不足，安全锤缺失。\n')
const photo = join(dir, '整改照片.png')
writeFileSync(
  photo,
  Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==', 'base64'),
)
const receipt = join(dir, '灭火器更换单.txt')
writeFileSync(receipt, '已更换 2 具 4kg 干粉灭火器。\n')
const second = join(dir, '复查说明.txt')
writeFileSync(second, '已按要求更换为 ABC 型灭火器并配齐安全锤。\n')

const title = `灭火器压力不足 ${Date.now() % 100000}`
const browser = await launch()
try {
  const page = await newPage(browser)
  const drawer = page.getByRole('dialog')
  const state = drawer.getByTestId('hazard-state')
  const row = () => page.getByRole('row').filter({ hasText: title })
  /// The drawer's timeline: each step's action, in order.
  const timeline = () => drawer.locator('.history li[data-action]').evaluateAll((ls) => ls.map((l) => l.dataset.action))
  async function expectState(want) {
    await state.filter({ hasText: want }).waitFor({ timeout: 10_000 }).catch(() => {})
    const got = (await state.textContent())?.trim()
    expect(got === want, `the hazard should be ${want}, the drawer says ${got}`)
  }
  async function expectTimeline(want) {
    await drawer.locator('.history li[data-action]').nth(want.length - 1).waitFor({ timeout: 10_000 }).catch(() => {})
    const got = await timeline()
    expect(JSON.stringify(got) === JSON.stringify(want), `history ${JSON.stringify(got)}, expected ${JSON.stringify(want)}`)
  }
  /// Downloads a file from the drawer's timeline: the link saves a file of that name, and the
  /// content answers 200 as an attachment.
  async function expectDownload(name) {
    const link = drawer.getByRole('link', { name }).first()
    const href = await link.getAttribute('href')
    expect(/^\/api\/files\/[0-9a-f-]+\/content$/.test(href ?? ''), `the file link is ${href}`)
    const resp = await page.request.get(`${base}${href}`)
    expect(resp.status() === 200, `GET ${href} answered ${resp.status()}`)
    const cd = resp.headers()['content-disposition'] ?? ''
    expect(cd.startsWith('attachment'), `Content-Disposition: ${cd}`)
    const [d] = await Promise.all([page.waitForEvent('download', { timeout: 15_000 }), link.click()])
    expect(d.suggestedFilename() === name, `downloaded ${d.suggestedFilename()}, not ${name}`)
    return readFileSync(await d.path())
  }
  async function openHazards() {
    await page.getByRole('link', { name: '隐患整改' }).click()
    await page.waitForURL(`${base}/hazards`)
    await page.getByRole('tab', { name: '待我处理' }).waitFor()
    expect((await page.getByRole('tab', { name: '待我处理' }).getAttribute('aria-selected')) === 'true', 'the inbox is not the first tab')
  }
  async function openHazard() {
    await row().getByRole('link').first().click()
    await page.waitForURL(/\/hazards\/[0-9a-f-]+$/)
    await drawer.getByRole('heading', { name: title }).waitFor()
  }
  /// The list has settled (not loading) and the row is there (or not).
  async function expectRow(present, where) {
    await page.waitForFunction(() => !document.querySelector('table[aria-busy="true"]'))
    if (present) await row().waitFor({ timeout: 10_000 }).catch(() => {})
    else await page.waitForTimeout(500)
    const n = await row().count()
    expect(present ? n === 1 : n === 0, `the hazard ${present ? 'should' : 'should not'} be in ${where} (${n} rows)`)
  }

  step('the regulator records a hazard at the bus company with a deadline and an inspection record')
  await page.goto(`${base}/login`)
  await signIn(page, 'jt.liu')
  await page.waitForURL(`${base}/`)
  await openHazards()
  await page.getByRole('button', { name: '新建隐患' }).click()
  const form = page.getByRole('form', { name: '新建隐患' })
  await form.getByLabel('企业').selectOption({ label: '武清区公共交通有限公司' })
  // The enterprise's vehicles arrive as the vehicle's choices.
  const vehicle = form.getByLabel('车辆')
  await page.waitForFunction(() => document.querySelectorAll('form select')[1]?.options.length > 1)
  const plate = (await vehicle.locator('option').nth(1).textContent()).trim()
  await vehicle.selectOption({ label: plate })
  await form.getByLabel('隐患标题').fill(title)
  await form.getByLabel('隐患描述').fill('现场检查发现 2 号车灭火器压力不足，安全锤缺失。')
  await form.getByLabel('整改期限').fill(inDays(7))
  await form.getByLabel('检查证据').setInputFiles(inspection)
  await form.getByText('已上传').waitFor()
  await form.getByRole('button', { name: '保存' }).click()
  await page.waitForURL(/\/hazards\/[0-9a-f-]+$/)
  await drawer.getByRole('heading', { name: title }).waitFor()
  await expectState('已下发')
  await expectTimeline(['record', 'notify'])
  expect((await drawer.textContent()).includes(plate), 'the drawer does not name the vehicle')
  expect((await drawer.textContent()).includes(`整改期限 ${inDays(7)}`), 'the notice step does not give the deadline')
  // The drawer's address opens it on a fresh load too.
  await page.reload()
  await drawer.getByRole('heading', { name: title }).waitFor()
  await expectState('已下发')
  const record = await expectDownload('检查记录.txt')
  expect(record.toString('utf8').includes('安全锤缺失'), 'the downloaded record is not the uploaded one')
  await drawer.getByRole('button', { name: '关闭' }).click()
  await page.waitForURL(`${base}/hazards`)
  // Notified: the enterprise's turn, not the bureau's.
  await expectRow(false, "the regulator's inbox")
  await page.getByRole('tab', { name: '全部隐患' }).click()
  await expectRow(true, 'all hazards')
  expect((await row().textContent()).includes('已下发'), `the list row says ${await row().textContent()}`)
  await signOut(page)

  step('the bus company finds it in its inbox and reports the rectification with two files')
  await signIn(page, 'bus.sun')
  await page.waitForURL(`${base}/`)
  await openHazards()
  await expectRow(true, "the operator's inbox")
  expect((await row().textContent()).includes('剩 7 天'), `the deadline's days left: ${await row().textContent()}`)
  await openHazard()
  await expectState('已下发')
  // The bureau's evidence is shared with the enterprise.
  await expectDownload('检查记录.txt')
  expect((await drawer.getByRole('button', { name: /审核|撤销|下发/ }).count()) === 0, 'the operator is offered the bureau\'s steps')
  await drawer.getByRole('button', { name: '报告整改' }).click()
  await drawer.getByLabel('整改情况').fill('已更换灭火器，补齐安全锤。')
  await drawer.getByLabel('整改证据').setInputFiles([photo, receipt])
  await page.waitForFunction(() => document.querySelectorAll('[role=dialog] .files .tag.ok').length === 2)
  await drawer.getByRole('button', { name: '报告整改' }).click()
  await expectState('已报告')
  await expectTimeline(['record', 'notify', 'report'])
  const reportStep = drawer.locator('.history li[data-action="report"]')
  expect((await reportStep.textContent()).includes('已更换灭火器'), 'the report step lacks its note')
  expect((await reportStep.getByRole('link').count()) === 2, 'the report step should list two files')
  const png = await expectDownload('整改照片.png')
  expect(png.subarray(1, 4).toString() === 'PNG', 'the downloaded photo is not the PNG uploaded')
  await drawer.getByRole('button', { name: '关闭' }).click()
  await expectRow(false, "the operator's inbox after reporting")
  await signOut(page)

  step('the regulator returns it with a note and a new deadline')
  await signIn(page, 'jt.liu')
  await page.waitForURL(`${base}/`)
  await openHazards()
  await expectRow(true, "the regulator's inbox")
  expect((await row().textContent()).includes('已报告'), `the list row says ${await row().textContent()}`)
  await openHazard()
  await drawer.getByRole('button', { name: '退回整改' }).click()
  // The note is required: said under the field, nothing sent.
  await drawer.getByRole('button', { name: '退回整改' }).click()
  await drawer.getByText('此项必填').waitFor()
  await drawer.getByLabel('退回原因').fill('灭火器型号不符合要求，请更换为 ABC 型。')
  await drawer.getByLabel('新整改期限').fill(inDays(10))
  await drawer.getByRole('button', { name: '退回整改' }).click()
  await expectState('已退回')
  await expectTimeline(['record', 'notify', 'report', 'return'])
  expect((await drawer.locator('.history li[data-action="return"]').textContent()).includes('ABC 型'), 'the return step lacks its note')
  expect((await drawer.textContent()).includes(inDays(10)), 'the new deadline is not shown')
  await signOut(page)

  step('the bus company reports again')
  await signIn(page, 'bus.sun')
  await page.waitForURL(`${base}/`)
  await openHazards()
  await expectRow(true, "the operator's inbox after the return")
  expect((await row().textContent()).includes('已退回'), `the list row says ${await row().textContent()}`)
  await openHazard()
  await expectState('已退回')
  await drawer.getByRole('button', { name: '报告整改' }).click()
  await drawer.getByLabel('整改情况').fill('已更换为 ABC 型灭火器。')
  await drawer.getByLabel('整改证据').setInputFiles(second)
  await drawer.locator('.files .tag.ok').waitFor()
  await drawer.getByRole('button', { name: '报告整改' }).click()
  await expectState('已报告')
  await expectTimeline(['record', 'notify', 'report', 'return', 'report'])
  await signOut(page)

  step('the regulator passes it: closed')
  await signIn(page, 'jt.liu')
  await page.waitForURL(`${base}/`)
  await openHazards()
  await openHazard()
  await expectDownload('复查说明.txt')
  await drawer.getByRole('button', { name: '审核通过' }).click()
  await drawer.getByLabel('说明').fill('复查合格，予以销号。')
  await drawer.getByRole('button', { name: '审核通过' }).click()
  await expectState('已销号')
  await expectTimeline(['record', 'notify', 'report', 'return', 'report', 'pass'])
  expect((await drawer.getByRole('button', { name: /审核|撤销|退回/ }).count()) === 0, 'a closed hazard still offers steps')
  await drawer.getByRole('button', { name: '关闭' }).click()
  await expectRow(false, "the regulator's inbox once closed")
  await page.getByRole('tab', { name: '全部隐患' }).click()
  await page.getByLabel('状态').selectOption('closed')
  await expectRow(true, 'the closed hazards')
  const api = await get(await token('jt.liu'), `/api/supervision/hazards?q=${encodeURIComponent(title)}`)
  expect(api.total === 1 && api.items[0].state === 'closed', `the API has ${JSON.stringify(api.items.map((h) => h.state))}`)
  await signOut(page)

  step('the bus company registers a driver: a wrong citizen ID is refused under the field')
  await signIn(page, 'bus.sun')
  await page.waitForURL(`${base}/`)
  await page.getByRole('link', { name: '从业人员' }).click()
  await page.waitForURL(`${base}/practitioners`)
  await page.getByRole('button', { name: '登记从业人员' }).click()
  const pform = page.getByRole('form', { name: '登记从业人员' })
  const id = citizenId('19900101', '123')
  await pform.getByLabel('姓名').fill('测试驾驶员')
  await pform.getByLabel('人员类别').selectOption('driver')
  const cid = pform.getByLabel('公民身份号码')
  await cid.fill(id.slice(0, 17) + (id.endsWith('1') ? '2' : '1'))
  await pform.getByLabel('从业资格类别').selectOption('城市公共汽车驾驶员')
  await pform.getByLabel('资格证有效期至').fill(inDays(20))
  await pform.getByLabel('准驾车型').fill('A3')
  await pform.getByLabel('驾驶证有效期至').fill(inDays(400))
  await pform.getByRole('button', { name: '保存' }).click()
  await page.waitForFunction(() => document.querySelector('[aria-invalid="true"]'))
  expect((await cid.getAttribute('aria-invalid')) === 'true', 'the citizen ID is not marked invalid')
  await cid.fill(id)
  await pform.getByRole('button', { name: '保存' }).click()
  await page.getByRole('status').filter({ hasText: '已登记从业人员：测试驾驶员' }).waitFor()

  step('and the vehicles the driver drives')
  const links = page.getByRole('form', { name: '设置驾驶/押运车辆' })
  const plates = links.getByLabel('驾驶/押运车辆')
  await page.waitForFunction(() => document.querySelectorAll('select[multiple] option').length > 1)
  const two = (await plates.locator('option').allTextContents()).slice(0, 2).map((s) => s.trim())
  await plates.selectOption(two.map((label) => ({ label })))
  await links.getByRole('button', { name: '保存' }).click()
  await page.getByRole('status').filter({ hasText: '已设置车辆' }).waitFor()
  const driver = page.getByRole('row').filter({ hasText: '测试驾驶员' })
  await driver.waitFor()
  const text = await driver.textContent()
  expect(two.every((p) => text.includes(p)), `the row should list ${two}: ${text}`)
  expect(!text.includes(id) && text.includes('120114'), `the citizen ID should be shown masked: ${text}`)
  // The qualification ends in 20 days: flagged amber.
  expect((await driver.locator('.tag.warn').count()) >= 1, 'the qualification ending in 20 days is not flagged')
  await signOut(page)

  step('the regulator reads the expiry board: the expired first and red, filters, export')
  await signIn(page, 'jt.liu')
  await page.waitForURL(`${base}/`)
  await page.getByRole('link', { name: '到期预警' }).click()
  await page.waitForURL(`${base}/expiry`)
  const tok = await token('jt.liu')
  const watch = await get(tok, '/api/supervision/expiry?within_days=30&limit=1')
  await page.getByText(`共 ${watch.total} 条`).waitFor()
  const summary = page.getByRole('region', { name: '各企业到期情况' })
  expect((await summary.getByRole('row').count()) === watch.summary.length + 1, 'the summary does not list every enterprise')
  const first = page.locator('tbody').last().getByRole('row').first().locator('.tag').first()
  expect((await first.textContent()).startsWith('已过期'), `the first item is not an expired one: ${await first.textContent()}`)
  const red = await first.evaluate((e) => getComputedStyle(e).color)
  expect(red === 'rgb(153, 27, 27)', `the expired tag is ${red}, not red`)
  // One kind.
  await page.getByLabel('证照类型').selectOption('compulsory_insurance')
  const kind = await get(tok, '/api/supervision/expiry?within_days=30&kind=compulsory_insurance&limit=1')
  await page.getByText(`共 ${kind.total} 条`).waitFor()
  const kinds = await page.locator('tbody').last().locator('td:nth-child(2)').allTextContents()
  expect(kinds.length > 0 && kinds.every((k) => k === '交强险'), `kinds shown: ${kinds}`)
  await page.getByLabel('证照类型').selectOption('')
  // One enterprise, from its counts; the 90-day window.
  await summary.getByRole('button', { name: '武清杨村出租汽车有限公司' }).click()
  await page.getByRole('button', { name: '90 天内' }).click()
  const taxi = watch.summary.find((s) => s.org_name === '武清杨村出租汽车有限公司')
  const taxiItems = await get(tok, `/api/supervision/expiry?within_days=90&org_id=${taxi.org_id}&limit=1`)
  await page.getByText(`共 ${taxiItems.total} 条`).waitFor()
  const orgs = await page.locator('tbody').last().locator('td:last-child').allTextContents()
  expect(orgs.every((o) => o === '武清杨村出租汽车有限公司'), `enterprises shown: ${[...new Set(orgs)]}`)
  const [x] = await Promise.all([page.waitForEvent('download', { timeout: 60_000 }), page.getByRole('button', { name: '导出 Excel' }).click()])
  expect(/^到期预警_\d{4}-\d{2}-\d{2}\.xlsx$/.test(x.suggestedFilename()), `the export is named ${x.suggestedFilename()}`)
  expect(readFileSync(await x.path()).readUInt32LE(0) === 0x04034b50, 'the export is not an xlsx (zip) file')
  page.check()
  console.log('hazards end-to-end: ok')
} finally {
  await browser.close()
}
