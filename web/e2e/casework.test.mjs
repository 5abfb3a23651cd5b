// End-to-end: the bureau's casework boards against a fresh `serve --demo` — the monthly archives
// board with the demo's gaps (the bus company's missing kind last month, the coach company that
// filed nothing), a cell's files downloaded, shunda filing this month's archive and its cell
// turning green; the credit ranking with the grades the API gives and one enterprise's deductions
// with their evidence, a hazard's evidence opening the hazard; a fine recorded by the regulator
// (typed in yuan, stored in fen) that appears in the enterprise's own list and in its credit
// deductions; the rules panel refusing a wrong figure under the field.
// Usage: node e2e/casework.test.mjs BASE_URL DATA_DIR
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { base, token, get, launch, newPage, signIn, signOut, step } from './lib.mjs'

const fail = (what) => {
  throw new Error(what)
}
const expect = (cond, what) => cond || fail(what)
/// Months in Beijing, YYYY-MM: `back` months before this one.
const monthOf = (back) => {
  const now = new Date(Date.now() + 8 * 3600_000)
  return new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() - back, 1)).toISOString().slice(0, 7)
}
const today = new Date(Date.now() + 8 * 3600_000).toISOString().slice(0, 10)

const dir = mkdtempSync(join(tmpdir(), 'wq-case-'))
const minutes = join(dir, '安全例会记录-本月.txt')
writeFileSync(minutes, '本月安全例会：传达冬季安全检查通知。\n')

const BUS = '武清区公共交通有限公司'
const SHUNDA = '天津武清顺达危险货物运输有限公司'
const COACH = '天津京津城际客运有限公司'
const TAXI = '武清杨村出租汽车有限公司'
const browser = await launch()
try {
  const page = await newPage(browser)
  const drawer = page.getByRole('dialog')
  const cell = (org, kind) => page.locator(`button.cell[data-org="${org}"][data-kind="${kind}"]`)
  async function expectCell(org, kind, status, text) {
    await page.waitForFunction(() => !document.querySelector('table[aria-busy="true"]'))
    await page.locator(`button.cell[data-org="${org}"][data-kind="${kind}"][data-status="${status}"]`).waitFor({ timeout: 10_000 }).catch(() => {})
    const got = await cell(org, kind).getAttribute('data-status')
    const shown = (await cell(org, kind).textContent()).trim()
    expect(got === status && shown.startsWith(text), `${org} × ${kind}: ${got} "${shown}", expected ${status} "${text}"`)
  }
  const reg = await token('jt.liu')

  step("the archives board opens on last month and shows the demo's gaps")
  await page.goto(`${base}/login`)
  await signIn(page, 'jt.liu')
  await page.waitForURL(`${base}/`)
  await page.getByRole('link', { name: '月度归档' }).click()
  await page.waitForURL(`${base}/archives`)
  const monthInput = page.getByLabel('月份')
  await page.locator('table.board').waitFor()
  expect((await monthInput.inputValue()) === monthOf(1), `the board opens on ${await monthInput.inputValue()}, not last month`)
  // The bus company filed no driver education record last month: missing from the 5th on, before
  // that not yet due (as the server's board says).
  const last = await get(reg, `/api/supervision/archives/board?month=${monthOf(1)}`)
  const busGap = last.enterprises.find((e) => e.org_name === BUS).kinds.find((k) => k.kind === 'driver_safety_education')
  expect(busGap.files.length === 0 && ['missing', 'pending'].includes(busGap.status), `the API's bus gap: ${JSON.stringify(busGap)}`)
  const dueYet = today >= last.due
  await expectCell(BUS, 'driver_safety_education', dueYet ? 'missing' : 'pending', dueYet ? '缺报' : '待报')
  await expectCell(BUS, 'monitoring_duty_log', 'uploaded', '已上传')
  expect((await cell(BUS, 'monitoring_duty_log').textContent()).includes('1 个文件'), 'the cell does not count its file')
  // Two months back every deadline has passed: the coach company's row is red, the taxi's amber.
  await monthInput.fill(monthOf(2))
  await expectCell(COACH, 'safety_meeting_minutes', 'missing', '缺报')
  await expectCell(BUS, 'driver_safety_education', 'uploaded', '已上传')
  await expectCell(SHUNDA, 'monitoring_duty_log', 'uploaded', '已上传')
  // A cell lists its files, to download.
  await cell(SHUNDA, 'monitoring_duty_log').click()
  const files = page.getByTestId('cell-files')
  await files.waitFor()
  const link = files.getByRole('link').first()
  const href = await link.getAttribute('href')
  const resp = await page.request.get(`${base}${href}`)
  expect(resp.status() === 200 && (resp.headers()['content-disposition'] ?? '').startsWith('attachment'), `the archive file answered ${resp.status()}`)
  expect((await link.textContent()).includes(monthOf(2)), `the listed file is ${await link.textContent()}`)
  // The bureau's kinds dialog lists the three required kinds.
  await page.getByRole('button', { name: '管理归档类型' }).click()
  const kinds = page.locator('dialog[open]')
  await kinds.getByText('driver_safety_education').waitFor()
  expect((await kinds.locator('table.kinds tbody tr').count()) === 3, 'the kinds dialog should list three kinds')
  await kinds.getByRole('button', { name: '关闭' }).click()
  await signOut(page)

  step("shunda files this month's safety meeting minutes and its cell turns green")
  await signIn(page, 'shunda.zhao')
  await page.waitForURL(`${base}/`)
  await page.goto(`${base}/archives`)
  await page.locator('table.board').waitFor()
  expect((await page.locator('table.board tbody tr').count()) === 1, 'an enterprise should see its own row only')
  await monthInput.fill(monthOf(0))
  await expectCell(SHUNDA, 'safety_meeting_minutes', 'pending', '待报')
  await page.getByRole('button', { name: '归档', exact: true }).click()
  const form = page.getByRole('form', { name: '归档' })
  expect((await form.getByLabel('月份').inputValue()) === monthOf(0), 'the form should start on this month')
  await form.getByLabel('归档类型').selectOption({ label: '安全例会记录' })
  await form.getByLabel('归档文件').setInputFiles(minutes)
  await form.getByText('已上传').waitFor()
  await form.getByRole('button', { name: '归档', exact: true }).click()
  await page.getByRole('status').filter({ hasText: '已归档' }).waitFor()
  await expectCell(SHUNDA, 'safety_meeting_minutes', 'uploaded', '已上传')
  expect((await page.getByTestId('cell-files').textContent()).includes('安全例会记录-本月.txt'), 'the new file is not listed under its cell')
  await expectCell(SHUNDA, 'monitoring_duty_log', 'pending', '待报')
  await signOut(page)

  step('the credit ranking shows the grades and one enterprise’s deductions with their evidence')
  await signIn(page, 'jt.liu')
  await page.waitForURL(`${base}/`)
  await page.getByRole('link', { name: '信誉考核' }).click()
  await page.waitForURL(`${base}/credit`)
  const ranking = await get(reg, '/api/supervision/credit')
  const table = page.getByTestId('ranking')
  await table.waitFor()
  const rows = table.locator('tbody tr')
  expect((await rows.count()) === ranking.length, `${await rows.count()} rows, the API ranks ${ranking.length}`)
  for (const [i, a] of ranking.entries()) {
    const r = rows.nth(i)
    const t = await r.textContent()
    expect(t.includes(a.org_name) && t.includes(a.score.toFixed(1)), `row ${i + 1} says ${t}, the API ${a.org_name} ${a.score}`)
    expect((await r.getByTestId('grade').textContent()).trim() === a.grade, `row ${i + 1}'s grade is not ${a.grade}`)
  }
  const taxi = ranking.find((a) => a.org_name === TAXI)
  await table.getByRole('link', { name: TAXI }).click()
  await drawer.getByRole('heading', { name: TAXI }).waitFor()
  for (const d of taxi.deductions) {
    const item = drawer.locator(`li[data-item="${d.item}"]`)
    expect((await item.count()) === 1, `the drawer lacks the deduction ${d.item}`)
    expect((await item.textContent()).includes(`-${d.points}`), `${d.item}'s points are not shown`)
    for (const e of d.evidence) expect((await item.textContent()).includes(e.label), `${d.item} lacks its evidence ${e.label}`)
  }
  const hazard = taxi.deductions.find((d) => d.item === 'overdue_hazards').evidence[0]
  const doc = taxi.deductions.find((d) => d.item === 'late_reports').evidence[0]
  expect((await drawer.getByRole('link', { name: doc.label }).getAttribute('href')) === `/documents/${doc.id}`, "the document's evidence does not open it")
  await drawer.getByRole('link', { name: hazard.label }).click()
  await page.waitForURL(`${base}/hazards/${hazard.id}`)
  await page.getByRole('dialog').getByRole('heading', { name: hazard.label }).waitFor()

  step('the regulator records a fine against a bus of the bus company')
  await page.getByRole('link', { name: '处罚事故' }).click()
  await page.waitForURL(`${base}/penalties`)
  await page.getByRole('button', { name: '登记处罚决定' }).click()
  const pform = page.getByRole('form', { name: '登记处罚决定' })
  const decision = `津武交罚〔2026〕${String(Date.now() % 9000 + 1000)}号`
  await pform.getByLabel('决定书文号').fill(decision)
  await pform.getByLabel('企业').selectOption({ label: BUS })
  await pform.getByLabel('对象类型').selectOption({ label: '车辆' })
  const vehicle = pform.getByLabel('车辆')
  await page.waitForFunction(() => [...document.querySelectorAll('form select')].some((s) => s.options.length > 1 && /津/.test(s.options[1]?.text ?? '')))
  const plate = (await vehicle.locator('option').nth(1).textContent()).trim()
  await vehicle.selectOption({ label: plate })
  await pform.getByLabel('类别').selectOption({ label: '罚款' })
  // A wrong amount is refused under the field, before anything is sent.
  await pform.getByLabel('金额（元）').fill('1500.555')
  await pform.getByLabel('法律依据').fill('《道路运输条例》第七十条')
  await pform.getByLabel('违法事实').fill('该车未按规定保持车载卫星定位装置正常工作。')
  await pform.getByRole('button', { name: '保存' }).click()
  await pform.getByText('请填写金额').waitFor()
  await pform.getByLabel('金额（元）').fill('1500.50')
  await pform.getByRole('button', { name: '保存' }).click()
  await page.waitForURL(/\/penalties\/[0-9a-f-]+$/)
  await drawer.getByRole('heading', { name: decision }).waitFor()
  expect((await drawer.getByTestId('amount').textContent()).includes('1,500.50'), `the drawer's amount: ${await drawer.getByTestId('amount').textContent()}`)
  expect((await drawer.getByTestId('case-state').textContent()).trim() === '已作出', 'the decision should be 已作出')
  expect((await drawer.textContent()).includes(plate), 'the drawer does not name the vehicle')
  const pid = page.url().split('/').pop()
  const stored = await get(reg, `/api/supervision/penalties/${pid}`)
  expect(stored.amount_fen === 150050 && stored.subject_label === plate, `stored: ${stored.amount_fen} fen, ${stored.subject_label}`)
  await signOut(page)

  step('the bus company sees the fine in its own list and in its credit deductions')
  await signIn(page, 'bus.sun')
  await page.waitForURL(`${base}/`)
  await page.getByRole('link', { name: '处罚事故' }).click()
  await page.waitForURL(`${base}/penalties`)
  const prow = page.getByRole('row').filter({ hasText: decision })
  await prow.waitFor()
  expect((await prow.textContent()).includes('¥1,500.50'), `the row says ${await prow.textContent()}`)
  expect((await page.getByRole('button', { name: '登记处罚决定' }).count()) === 0, 'an enterprise is offered to record a decision')
  expect((await page.getByRole('row').count()) === 2, 'the bus company should see its one decision only')
  await prow.getByRole('link', { name: decision }).click()
  await drawer.getByRole('heading', { name: decision }).waitFor()
  expect((await drawer.getByRole('button', { name: /履行|撤销/ }).count()) === 0, 'an enterprise is offered the bureau’s steps')
  await page.getByRole('link', { name: '信誉考核' }).click()
  await page.waitForURL(`${base}/credit`)
  await page.getByTestId('ranking').waitFor()
  expect((await page.getByTestId('ranking').locator('tbody tr').count()) === 1, 'an enterprise should see its own assessment only')
  await page.getByRole('link', { name: BUS }).click()
  const penalties = drawer.locator('li[data-item="penalties"]')
  await penalties.waitFor()
  const evidence = penalties.getByRole('link', { name: decision })
  expect((await evidence.getAttribute('href')) === `/penalties/${pid}`, 'the penalty evidence does not open the decision')
  expect((await penalties.textContent()).includes('-5'), `the fine's points: ${await penalties.textContent()}`)
  await signOut(page)

  step('the rules panel refuses a wrong figure under the field and publishes a new version')
  await signIn(page, 'jt.liu')
  await page.waitForURL(`${base}/`)
  await page.goto(`${base}/credit`)
  await page.getByRole('tab', { name: '考核规则' }).click()
  await page.getByTestId('rules-version').filter({ hasText: '第 1 版' }).waitFor()
  const rform = page.getByRole('form', { name: '发布新版本' })
  await rform.getByLabel('AAA 级分数线').fill('120')
  await rform.getByRole('button', { name: '发布新版本' }).click()
  const aaa = rform.getByLabel('AAA 级分数线')
  await page.waitForFunction(() => document.querySelector('[aria-invalid="true"]'))
  expect((await aaa.getAttribute('aria-invalid')) === 'true', 'the refused figure is not marked')
  await rform.getByLabel('AAA 级分数线').fill('92')
  await rform.getByLabel('发布说明').fill('提高 AAA 级分数线')
  await rform.getByRole('button', { name: '发布新版本' }).click()
  await page.getByTestId('rules-version').filter({ hasText: '第 2 版' }).waitFor()
  expect((await page.getByRole('row').filter({ hasText: '提高 AAA 级分数线' }).count()) === 1, 'the new version is not listed')
  page.check()
  console.log('ok')
} finally {
  await browser.close()
}
