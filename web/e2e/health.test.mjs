// End-to-end: the health record pages (issue 9) in headless Chromium against a fresh
// `serve --demo` (web/e2e/run.sh). The People's Hospital's doctor finds the demo resident by her
// citizen ID (shown masked), opens her record (conditions, the blood pressure trend drawn, the
// timeline, the access log); opens a patient who is not in care there and is refused, then reads
// the record by break-glass with a reason; the resident signs in, lands on her own record and
// sees that the doctor read it; the health commission's staff decide a pair of the patient index.
// Exits non-zero on the first failure.
// Usage: node e2e/health.test.mjs BASE_URL DATA_DIR
import { base, token, get, launch, newPage, step, signIn } from './lib.mjs'

async function signOut(page) {
  await page.getByRole('button', { name: '退出' }).click()
  await page.waitForURL(/\/login/)
}

const browser = await launch()
try {
  const yangTok = await token('dr.yang')
  const huang = await get(yangTok, '/fhir/Patient/huang-xiuying')
  const cid = huang.identifier.find((i) => i.system === 'urn:wuqing:sid:citizen-id').value
  // A district resident with no record at the People's Hospital: one it may not read.
  const listed = await get(yangTok, '/fhir/Patient?gender=male&_count=100')
  let stranger = null
  for (const e of listed.entry) {
    const r = await fetch(`${base}/fhir/Observation?patient=${e.resource.id}`, { headers: { authorization: `Bearer ${yangTok}` } })
    if (r.status === 403) {
      stranger = e.resource.id
      break
    }
  }
  if (!stranger) throw new Error('no patient outside the hospital\'s care in the demo')

  const page = await newPage(browser)
  step('the hospital doctor finds the resident by citizen ID, masked in the list')
  await page.goto(`${base}/login`)
  await signIn(page, 'dr.yang')
  await page.getByRole('link', { name: '患者查询' }).click()
  await page.getByLabel('身份证号或病历号').fill(cid)
  await page.getByRole('button', { name: '查询' }).click()
  const row = page.getByRole('row').filter({ hasText: '黄秀英' })
  await row.waitFor()
  const shown = await row.textContent()
  if (shown.includes(cid)) throw new Error(`the list shows the whole citizen ID: ${shown}`)
  if (!shown.includes(cid.slice(-4))) throw new Error(`the list does not show the ID's last four: ${shown}`)

  step('her record: conditions, the blood pressure trend drawn, the timeline, the access log')
  await row.getByRole('button', { name: '查看档案' }).click()
  await page.waitForURL(`${base}/patients/huang-xiuying`)
  await page.getByRole('heading', { name: '健康档案' }).waitFor()
  await page.getByText('原发性高血压').first().waitFor()
  await page.getByRole('img', { name: '血压趋势 (mmHg)' }).or(page.locator('figure').filter({ hasText: '血压趋势' }).locator('canvas')).first().waitFor()
  await page.getByText('苯磺酸氨氯地平片').first().waitFor()
  await page.locator('.timeline li').first().waitFor()
  await page.getByTestId('access-log').getByText('人民医院 杨医生').first().waitFor()
  if (process.env.SHOTS) await page.screenshot({ path: `${process.env.SHOTS}/record.png`, fullPage: true })

  step('a patient not in care at the hospital: refused, with the reason shown')
  await page.goto(`${base}/patients/${stranger}`)
  await page.getByRole('alert').filter({ hasText: '无权查看该患者档案' }).waitFor()
  if (await page.locator('.timeline').count()) throw new Error('a refused record shows a timeline')

  step('break-glass with a stated reason opens it, and is recorded')
  await page.getByLabel('紧急访问理由').fill('急诊抢救，患者昏迷无法授权')
  await page.getByRole('button', { name: '紧急访问' }).click()
  // The access log (read under the same emergency) shows the emergency access.
  await page.getByTestId('access-log').getByRole('row').filter({ hasText: '紧急访问' }).first().waitFor()
  if (process.env.SHOTS) await page.screenshot({ path: `${process.env.SHOTS}/record-glass.png`, fullPage: true })
  page.check()

  step('the resident signs in, lands on her own record and sees who read it')
  await signOut(page)
  await signIn(page, 'resident.huang')
  await page.waitForURL(`${base}/my-record`)
  await page.getByRole('heading', { name: '我的健康档案' }).waitFor()
  await page.getByText('原发性高血压').first().waitFor()
  const access = page.getByTestId('access-log')
  await access.getByRole('row').filter({ hasText: '人民医院 杨医生' }).first().waitFor()
  await access.getByRole('row').filter({ hasText: '诊疗' }).first().waitFor()
  if (process.env.SHOTS) await page.screenshot({ path: `${process.env.SHOTS}/my-record.png`, fullPage: true })
  step('she cannot open another patient\'s record')
  await page.goto(`${base}/patients/${stranger}`)
  await page.getByRole('alert').filter({ hasText: '居民只能查看本人档案' }).waitFor()
  page.check()

  step('the health commission\'s staff decide a pair of the patient index')
  await signOut(page)
  await signIn(page, 'wjw.chen')
  await page.getByRole('link', { name: '患者主索引' }).click()
  const pair = page.locator('article.pair').first()
  await pair.waitFor()
  if (process.env.SHOTS) await page.screenshot({ path: `${process.env.SHOTS}/mpi.png`, fullPage: true })
  await pair.getByRole('button', { name: '不是同一人（分开）' }).click()
  await pair.getByText('已处理').waitFor()
  page.check()
  console.log('ok')
} finally {
  await browser.close()
}
