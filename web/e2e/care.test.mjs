// End-to-end: tiered care (issue 10) in headless Chromium against a fresh `serve --demo`
// (web/e2e/run.sh). The People's Hospital's doctor finds the demo's referrals waiting (the urgent
// one overdue), opens one and accepts it with a slot; the community centre's family doctor
// refers a patient from her record, prescribes above the maximum dose (refused with the finding,
// then overridden with a reason), sees the resident due for renewal and renews the contract;
// the family doctor's worklist shows the home devices' alerts with their evidence and a
// follow-up is closed with what was measured; the health commission's staff read the chronic
// care indicators, the coverage per township, set a population, see the referral figures and the prescription checks' (the knowledge base in use, the interactions);
// the resident books a visit, moves it and cancels another, and the hospital sees its day.
// Exits non-zero on the first failure.
// Usage: node e2e/care.test.mjs BASE_URL DATA_DIR
import { base, token, get, launch, newPage, step, signIn } from './lib.mjs'

async function signOut(page) {
  await page.getByRole('button', { name: '退出' }).click()
  await page.waitForURL(/\/login/)
}

const browser = await launch()
try {
  const wuTok = await token('dr.wu')
  // A patient in care at the centre with no referral yet: the one the family doctor refers.
  const out = await get(wuTok, '/api/health/referrals?box=outgoing&limit=100')
  const referred = new Set(out.items.map((r) => r.patient_id))
  const contracts = await get(wuTok, '/api/health/contracts?limit=200')
  const candidate = contracts.items.find((k) => !referred.has(k.patient_id) && k.patient_id.startsWith('demo-'))
  if (!candidate) throw new Error('no signed resident without a referral in the demo')

  const page = await newPage(browser)
  step('the hospital doctor sees the referrals waiting, the urgent one overdue')
  await page.goto(`${base}/login`)
  await signIn(page, 'dr.yang')
  await page.getByRole('link', { name: '双向转诊' }).click()
  await page.waitForURL(`${base}/referrals`)
  const waiting = page.getByRole('row').filter({ hasText: '待接收' })
  await waiting.first().waitFor()
  const urgent = page.getByRole('row').filter({ hasText: '上转 · 急' })
  await urgent.locator('.tag.bad').first().waitFor()
  if (process.env.SHOTS) await page.screenshot({ path: `${process.env.SHOTS}/referrals.png`, fullPage: true })

  step('opens it and accepts it with a slot: the state and the steps follow')
  await urgent.first().getByRole('button', { name: '查看' }).click()
  const drawer = page.getByRole('dialog')
  await drawer.getByText('血压 186/118 mmHg').waitFor()
  await drawer.getByLabel('预约时间').fill(new Date(Date.now() + 86_400_000).toISOString().slice(0, 11) + '09:00')
  await drawer.getByRole('button', { name: '接收' }).click()
  await drawer.locator('.tag', { hasText: '已接收' }).first().waitFor()
  await drawer.locator('.steps li').nth(1).filter({ hasText: '已接收' }).waitFor()
  await drawer.getByText('待到诊').waitFor()
  page.check()

  step('the family doctor refers a patient from the record')
  await signOut(page)
  await signIn(page, 'dr.wu')
  await page.getByRole('link', { name: '家庭医生' }).waitFor()
  await page.goto(`${base}/patients/${candidate.patient_id}`)
  await page.getByRole('link', { name: '发起转诊' }).click()
  const form = page.getByRole('form', { name: '发起转诊' })
  await form.waitFor()
  await form.getByLabel('接收机构').selectOption({ label: '天津市武清区人民医院' })
  await form.getByLabel('科室').fill('心血管内科')
  await form.getByLabel('诊断 (ICD-10)').fill('hypertension')
  await form.getByLabel('转诊原因').fill('血压控制不佳，请专科调整用药')
  await form.getByRole('button', { name: '提交转诊' }).click()
  await form.getByRole('alert').waitFor() // the server names the bad ICD-10 code
  await form.getByLabel('诊断 (ICD-10)').fill('I10')
  await form.getByRole('button', { name: '提交转诊' }).click()
  await page.waitForURL(/\/referrals\/[0-9a-f-]{36}$/)
  await page.getByRole('dialog').getByText('血压控制不佳，请专科调整用药').waitFor()
  page.check()

  step('a prescription above the maximum dose is refused with its finding, then overridden with a reason')
  await page.goto(`${base}/patients/${candidate.patient_id}`)
  const rx = page.getByRole('form', { name: '开具处方' })
  await rx.waitFor()
  await rx.getByLabel('药品').fill('苯磺酸氨氯地平片')
  await rx.getByLabel('每次剂量 (mg)').fill('10')
  await rx.getByLabel('每日次数').fill('2')
  await rx.getByRole('button', { name: '提交处方' }).click()
  const findings = page.getByTestId('rx-findings')
  await findings.getByText('max-dose:amlodipine').waitFor()
  await findings.getByLabel('越权使用理由').fill('高血压急症，短期加量并监测血压')
  await findings.getByRole('button', { name: '确认越权开具' }).click()
  await page.getByRole('status').filter({ hasText: '已开具' }).waitFor()
  await page.getByTestId('rx-alerts').getByText('高血压急症，短期加量并监测血压').waitFor()
  if (process.env.SHOTS) await page.screenshot({ path: `${process.env.SHOTS}/prescription.png`, fullPage: true })
  page.check()

  step('the resident due for renewal, renewed')
  await page.getByRole('link', { name: '家庭医生' }).click()
  await page.waitForURL(`${base}/family-doctor`)
  await page.getByLabel('60 天内到期待续约').check()
  const huang = page.getByRole('row').filter({ hasText: '黄秀英' })
  await huang.waitFor()
  await huang.getByRole('button', { name: '续约' }).click()
  // Renewed: off the renewal list, listed as renewed among all.
  await huang.waitFor({ state: 'detached' })
  await page.getByLabel('60 天内到期待续约').uncheck()
  await page.getByRole('row').filter({ hasText: '黄秀英' }).filter({ hasText: '已续约' }).first().waitFor()
  if (process.env.SHOTS) await page.screenshot({ path: `${process.env.SHOTS}/family-doctor.png`, fullPage: true })
  page.check()

  step('the worklist: home-device alerts with their evidence; a follow-up closed with what was measured')
  await page.getByRole('link', { name: '随访工作台' }).click()
  await page.waitForURL(`${base}/worklist`)
  const task = page.locator('li.item[data-action="follow_up"]').filter({ hasText: '高血压' }).first()
  await task.waitFor()
  await task.getByText('国家基本公共卫生服务规范').waitFor()
  await task.locator('.reading').filter({ hasText: 'mmHg' }).waitFor()
  const who = (await task.locator('.head a').textContent()).trim()
  if (process.env.SHOTS) await page.screenshot({ path: `${process.env.SHOTS}/worklist.png`, fullPage: true })
  await task.getByRole('button', { name: '处理' }).click()
  const closing = task.getByRole('form', { name: '处理' })
  await closing.getByLabel('结果').selectOption('uncontrolled')
  await closing.getByLabel('收缩压').fill('152')
  await closing.getByLabel('舒张压').fill('96')
  await closing.getByLabel('备注').fill('入户随访，调整用药')
  await closing.getByRole('button', { name: '提交' }).click()
  await closing.waitFor({ state: 'detached' })
  await page.getByRole('tab', { name: '已处理' }).click()
  await page.locator('li.item').filter({ hasText: who }).filter({ hasText: '入户随访，调整用药' }).first().waitFor()
  page.check()

  step('the commission reads the chronic care indicators, the coverage, sets a population and sees the referral figures')
  await signOut(page)
  await signIn(page, 'wjw.chen')
  await page.getByRole('link', { name: '基层卫生指标' }).click()
  const centreRow = page.locator('table.indicators[data-part="institutions"] tr').filter({ hasText: '杨村' })
  await centreRow.getByTestId('control-rate').first().filter({ hasText: /\d+\.\d%/ }).waitFor()
  await page.locator('table.indicators[data-part="townships"] tr').filter({ hasText: '杨村街道' }).waitFor()
  if (process.env.SHOTS) await page.screenshot({ path: `${process.env.SHOTS}/indicators.png`, fullPage: true })
  await page.getByRole('tab', { name: '签约覆盖率' }).click()
  const yangcun = page.locator('tr[data-township="杨村街道"]')
  await yangcun.waitFor()
  const before = await yangcun.locator('td').nth(2).textContent()
  if (!/%$/.test(before.trim())) throw new Error(`no coverage rate for 杨村街道: ${before}`)
  await yangcun.getByLabel('杨村街道 常住人口').fill('100000')
  await yangcun.getByRole('button', { name: '保存' }).click()
  await yangcun.locator('td').nth(2).filter({ hasText: /^0\.\d%$/ }).waitFor()
  await page.getByRole('img', { name: '各镇街签约覆盖率 (%)' }).or(page.locator('canvas')).first().waitFor()
  await page.getByRole('tab', { name: '转诊统计' }).click()
  await page.getByRole('row').filter({ hasText: '人民医院' }).first().waitFor()
  if (process.env.SHOTS) await page.screenshot({ path: `${process.env.SHOTS}/coverage.png`, fullPage: true })
  page.check()

  step('the prescription figures: the knowledge base in use, alerts per 1 000, the interactions found')
  await page.getByRole('tab', { name: '合理用药' }).click()
  await page.getByTestId('kb-version').filter({ hasText: '2026.12-starter' }).waitFor()
  await page.getByRole('row').filter({ hasText: '杨村街社区卫生服务中心' }).waitFor()
  await page.getByRole('row').filter({ hasText: 'warfarin-nsaid' }).waitFor()
  if (process.env.SHOTS) await page.screenshot({ path: `${process.env.SHOTS}/rx.png`, fullPage: true })
  page.check()

  step('the resident books the endocrinology clinic, moves the visit, cancels her cardiology one')
  await signOut(page)
  await signIn(page, 'resident.huang')
  await page.getByRole('link', { name: '预约挂号' }).click()
  await page.waitForURL(`${base}/appointments`)
  const clinic = page.getByLabel('科室/门诊')
  const endo = await clinic.locator('option', { hasText: '内分泌普通门诊' }).getAttribute('value')
  await clinic.selectOption(endo)
  const dayPick = page.getByLabel('日期')
  const later = await dayPick.locator('option').nth(4).getAttribute('value')
  await dayPick.selectOption(later)
  await page.getByLabel('就诊原因').fill('血糖复查')
  await page.locator('button.slot').first().click()
  await page.getByRole('status').filter({ hasText: '已预约成功' }).waitFor()
  await page.getByRole('tab', { name: '我的预约' }).click()
  const endoRow = page.getByRole('row').filter({ hasText: '内分泌科' }).filter({ hasText: '已预约' })
  await endoRow.waitFor()
  const firstTime = await endoRow.locator('td').first().textContent()
  await endoRow.getByRole('button', { name: '改约' }).click()
  await page.getByText('改约：请选择新的号源').waitFor()
  await page.locator('button.slot').last().click() // late in the morning: clear of her cardiology visit
  await page.getByRole('tab', { name: '我的预约', selected: true }).waitFor()
  const moved = page.getByRole('row').filter({ hasText: '内分泌科' }).filter({ hasText: '已预约' })
  await moved.filter({ hasNotText: firstTime }).waitFor()
  const cardio = page.getByRole('row').filter({ hasText: '心血管内科' }).filter({ hasText: '已预约' })
  await cardio.getByRole('button', { name: '取消' }).click()
  await page.getByRole('row').filter({ hasText: '心血管内科' }).filter({ hasText: '已取消' }).waitFor()
  if (process.env.SHOTS) await page.screenshot({ path: `${process.env.SHOTS}/appointments-resident.png`, fullPage: true })
  page.check()

  step("the hospital's day: her visit booked, yesterday's seen and missed")
  await signOut(page)
  await signIn(page, 'dr.yang')
  await page.getByRole('link', { name: '预约管理' }).click()
  await page.waitForURL(`${base}/appointments`)
  await page.getByLabel('日期').fill(later)
  await page.getByRole('row').filter({ hasText: '黄秀英' }).filter({ hasText: '已预约' }).waitFor()
  const yesterday = new Date(Date.now() + 8 * 3_600_000 - 86_400_000).toISOString().slice(0, 10)
  const dayBefore = new Date(Date.now() + 8 * 3_600_000 - 2 * 86_400_000).toISOString().slice(0, 10)
  let missed = false
  for (const d of [yesterday, dayBefore]) {
    await page.getByLabel('日期').fill(d)
    try {
      await page.locator('tr[data-state="noshow"]').first().waitFor({ timeout: 3000 })
      missed = true
      break
    } catch {
      /* the demo's visits are on one of the two days before */
    }
  }
  if (!missed) throw new Error('no no-show among the demo visits of the last two days')
  if (process.env.SHOTS) await page.screenshot({ path: `${process.env.SHOTS}/appointments-hospital.png`, fullPage: true })
  page.check()
  console.log('ok')
} finally {
  await browser.close()
}
