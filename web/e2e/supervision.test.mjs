// End-to-end: the bureau's enterprise profiles (企业档案) and importing vehicles from a
// spreadsheet, against a fresh `serve --demo`. The transport regulator sees the bus company
// short of monitoring staff and the taxi company's licence expired; the bus company's operator
// mistypes the credit code (the server's message under the field), then corrects the staff count
// and the shortfall is gone; the operator checks a CSV of vehicles with one bad row (listed by
// row and column, nothing written) and imports the valid rows only; then the same for
// practitioners, a mistyped citizen ID named by row and column.
// Usage: node e2e/supervision.test.mjs BASE_URL DATA_DIR
import { writeFileSync, mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { base, token, get, launch, newPage, signIn, signOut, step } from './lib.mjs'

const browser = await launch()
try {
  const page = await newPage(browser)
  await page.goto(`${base}/login`)

  step('the regulator sees the shortfall and the expired licence')
  await signIn(page, 'jt.liu')
  await page.waitForURL(`${base}/`)
  await page.getByRole('link', { name: '企业档案' }).click()
  const busRow = page.getByRole('row').filter({ hasText: '公共交通' })
  await busRow.getByText('监控人员不足').waitFor()
  await page.getByRole('row').filter({ hasText: '出租' }).getByText('已过期').waitFor()
  await page.getByLabel('只看监控人员不足').check()
  if ((await page.getByRole('row').count()) !== 2) throw new Error('the filter should leave the bus company alone')
  await signOut(page)

  step('the bus company mistypes its credit code and is told under the field')
  await signIn(page, 'bus.sun')
  await page.waitForURL(`${base}/`)
  await page.goto(`${base}/enterprises`)
  await page.getByRole('button', { name: '维护档案' }).first().waitFor()
  if ((await page.getByRole('row').count()) !== 2) throw new Error('an operator sees only its own enterprise')
  await page.getByRole('button', { name: '维护档案' }).click()
  const uscc = page.getByLabel('统一社会信用代码')
  const good = await uscc.inputValue()
  await uscc.fill(good.slice(0, 17) + (good.endsWith('N') ? 'M' : 'N'))
  await page.getByRole('button', { name: '保存' }).click()
  await page.getByText('校验码不符').waitFor()
  if ((await uscc.getAttribute('aria-invalid')) !== 'true') throw new Error('the credit code field is not marked invalid')

  step('with two monitors the shortfall is gone')
  await uscc.fill(good)
  await page.getByLabel(/^监控人员/).fill('2')
  await page.getByRole('button', { name: '保存' }).click()
  await page.getByRole('status').filter({ hasText: '档案已保存' }).waitFor()
  if (await page.getByText('监控人员不足', { exact: true }).count()) throw new Error('the shortfall is still shown')

  step('a CSV with one bad row is checked: the row is named and nothing is written')
  const tok = await token('bus.sun')
  const before = (await get(tok, '/api/transport/vehicles?limit=1')).total
  const dir = mkdtempSync(join(tmpdir(), 'wq-import-'))
  const csv = join(dir, '车辆.csv')
  writeFileSync(csv, '\ufeff车牌号,车牌颜色,车辆类型\n津C5X901,黄色,公交车\n津C5X902,黄色,飞船\n津C5X903,黄色,公交车\n')
  await page.goto(`${base}/vehicles`)
  await page.getByRole('button', { name: '批量导入' }).click()
  await page.getByLabel('文件（xlsx 或 CSV）').setInputFiles(csv)
  await page.getByRole('button', { name: '检查' }).click()
  const bad = page.getByRole('row').filter({ hasText: 'unknown vehicle class' })
  await bad.waitFor()
  if (!(await bad.textContent()).startsWith('3')) throw new Error(`the bad row is row 3: ${await bad.textContent()}`)
  await page.getByText('共 3 行，正确 2 行，有误 1 行').waitFor()
  if ((await get(tok, '/api/transport/vehicles?limit=1')).total !== before) throw new Error('a check wrote vehicles')

  step('the valid rows only are imported')
  await page.getByLabel('有错误行时').selectOption('valid_only')
  await page.getByRole('button', { name: '导入', exact: true }).click()
  await page.getByText('已导入 2 行').waitFor()
  const after = await get(tok, '/api/transport/vehicles?plate=C5X90&limit=10')
  const plates = after.items.map((v) => v.plate).sort()
  if (JSON.stringify(plates) !== JSON.stringify(['津C5X901', '津C5X903'])) throw new Error(`imported: ${plates}`)

  step('practitioners from a CSV: a mistyped citizen ID is named by row and column, the good row imported')
  // An invented citizen ID of Wuqing (120114) with its GB 11643 check character.
  const citizenId = (birth, seq) => {
    const body = `120114${birth}${seq}`
    const w = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
    const sum = [...body].reduce((a, d, i) => a + Number(d) * w[i], 0)
    return body + '10X98765432'[sum % 11]
  }
  const valid = citizenId('19800101', '951')
  const right = citizenId('19810202', '953')
  const typo = right.slice(0, 17) + (right.endsWith('0') ? '1' : '0')
  const people = join(dir, '从业人员.csv')
  writeFileSync(
    people,
    '\ufeff姓名,岗位,公民身份号码,从业资格类别,从业资格证号,从业资格证有效期至,准驾车型,驾驶证有效期至\n' +
      `周一,驾驶员,${valid},城市公共汽车驾驶员,,2029-06-30,A3,2031-01-31\n` +
      `吴二,驾驶员,${typo},城市公共汽车驾驶员,,2029-06-30,A3,2031-01-31\n`,
  )
  const staff = (await get(tok, '/api/supervision/practitioners?limit=1')).total
  await page.goto(`${base}/practitioners`)
  await page.getByRole('button', { name: '批量导入' }).click()
  await page.getByLabel('文件（xlsx 或 CSV）').setInputFiles(people)
  await page.getByRole('button', { name: '检查' }).click()
  await page.getByText('共 2 行，正确 1 行，有误 1 行').waitFor()
  const badPerson = page.getByRole('row').filter({ hasText: 'check character' })
  if (!(await badPerson.textContent()).startsWith('3')) throw new Error(`the bad row is row 3: ${await badPerson.textContent()}`)
  await page.getByLabel('有错误行时').selectOption('valid_only')
  await page.getByRole('button', { name: '导入', exact: true }).click()
  await page.getByText('已导入 1 行').waitFor()
  if ((await get(tok, '/api/supervision/practitioners?limit=1')).total !== staff + 1) throw new Error('one practitioner should be imported')
  await page.getByRole('cell', { name: '周一', exact: true }).waitFor()
  page.check()
  console.log('supervision end-to-end: ok')
} finally {
  await browser.close()
}
