// End-to-end: tiered care (issue 10) in headless Chromium against a fresh `serve --demo`
// (web/e2e/run.sh). The People's Hospital's doctor finds the demo's referrals waiting (the urgent
// one overdue), opens one and accepts it with a slot; the community centre's family doctor
// refers a patient from her record, prescribes above the maximum dose (refused with the finding,
// then overridden with a reason), sees the resident due for renewal and renews the contract;
// the health commission's staff read the coverage per township, set a population, see the
// referral figures and the prescription checks' (the knowledge base in use, the interactions). Exits non-zero on the first failure.
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

  step('the commission reads the coverage, sets a population and sees the referral figures')
  await signOut(page)
  await signIn(page, 'wjw.chen')
  await page.getByRole('link', { name: '签约与转诊' }).click()
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
  console.log('ok')
} finally {
  await browser.close()
}
