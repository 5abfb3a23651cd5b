// End-to-end: the road-transport registry (车辆、终端) against a fresh `serve --demo`.
// An operator of the dangerous goods company registers a vehicle (a wrong plate is refused with
// the server's message under the plate field), registers a terminal, binds it to the new vehicle,
// unbinds it, and exports the vehicles to .xlsx (every row the API counts, the visible columns'
// titles as the header). A regulator sees several enterprises' vehicles, exports them all (more
// than a page), in English too, and is offered no registration, binding or unbinding.
// Usage: node e2e/registry.test.mjs BASE_URL DATA_DIR
import { readFileSync } from 'node:fs'
import { inflateRawSync } from 'node:zlib'
import { base, token, get, launch, newPage, signIn, signOut, step } from './lib.mjs'

const fail = (what) => {
  throw new Error(what)
}

/// The files of a zip archive (an .xlsx is one), by name.
function unzip(buf) {
  if (buf.readUInt32LE(0) !== 0x04034b50) fail('the download is not a zip archive')
  let end = buf.length - 22
  while (end >= 0 && buf.readUInt32LE(end) !== 0x06054b50) end--
  if (end < 0) fail('the zip archive has no central directory')
  const files = new Map()
  let p = buf.readUInt32LE(end + 16)
  for (let n = buf.readUInt16LE(end + 10); n > 0; n--) {
    const method = buf.readUInt16LE(p + 10)
    const size = buf.readUInt32LE(p + 20)
    const nameLen = buf.readUInt16LE(p + 28)
    const skip = nameLen + buf.readUInt16LE(p + 30) + buf.readUInt16LE(p + 32)
    const local = buf.readUInt32LE(p + 42)
    const name = buf.toString('utf8', p + 46, p + 46 + nameLen)
    const start = local + 30 + buf.readUInt16LE(local + 26) + buf.readUInt16LE(local + 28)
    const data = buf.subarray(start, start + size)
    files.set(name, (method === 8 ? inflateRawSync(data) : data).toString('utf8'))
    p += 46 + skip
  }
  return files
}

const unxml = (s) =>
  s.replace(/<[^>]+>/g, '').replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&apos;/g, "'").replace(/&amp;/g, '&')

/// The first sheet of an .xlsx as rows of cell texts.
function sheetRows(buf) {
  const files = unzip(buf)
  const shared = [...(files.get('xl/sharedStrings.xml') ?? '').matchAll(/<si>([\s\S]*?)<\/si>/g)].map((x) => unxml(x[1]))
  const sheet = files.get('xl/worksheets/sheet1.xml') ?? fail('the workbook has no first sheet')
  return [...sheet.matchAll(/<row[^>]*>([\s\S]*?)<\/row>/g)].map((row) =>
    [...row[1].matchAll(/<c([^>]*?)(?:\/>|>([\s\S]*?)<\/c>)/g)].map(([, attrs, body = '']) => {
      const v = unxml(body.match(/<v>([\s\S]*?)<\/v>/)?.[0] ?? body)
      return /t="s"/.test(attrs) ? shared[Number(v)] : v
    }),
  )
}

/// Clicks an export button and returns the download's suggested name and content.
async function download(page, button) {
  const [d] = await Promise.all([page.waitForEvent('download', { timeout: 60_000 }), page.getByRole('button', { name: button }).click()])
  return { name: d.suggestedFilename(), body: readFileSync(await d.path()) }
}

const rand = (n) => Array.from({ length: n }, () => Math.floor(Math.random() * 10)).join('')
const plate = `津A${'DEFGHJ'[Math.floor(Math.random() * 6)]}${rand(4)}`
const phone = `1770${rand(7)}`
const opToken = await token('shunda.zhao')
const regToken = await token('jt.liu')

// What the server says of a wrong plate, asked without the console.
const refused = await fetch(`${base}/api/transport/vehicles`, {
  method: 'POST',
  headers: { authorization: `Bearer ${opToken}`, 'content-type': 'application/json' },
  body: JSON.stringify({ plate: 'XA12345', plate_colour: 'yellow', class: 'dangerous_goods' }),
})
if (refused.status !== 422) fail(`a wrong plate answered ${refused.status}`)
const plateProblem = (await refused.json()).detail

const browser = await launch()
try {
  const page = await newPage(browser)
  await page.goto(`${base}/login`)

  step('the operator opens the vehicle registry')
  await signIn(page, 'shunda.zhao')
  await page.waitForURL(`${base}/`)
  await page.getByRole('link', { name: '车辆', exact: true }).click()
  await page.getByRole('row').filter({ hasText: '危险货物运输车' }).first().waitFor()

  step('a wrong plate is refused with the server\'s message under the plate field, which has focus')
  await page.getByRole('button', { name: '登记车辆' }).click()
  const form = page.getByRole('form', { name: '登记车辆' })
  const plateInput = form.getByLabel('车牌号')
  await plateInput.fill('XA12345')
  await form.getByLabel('车辆类型').selectOption({ label: '危险货物运输车' })
  await form.getByRole('button', { name: '保存' }).click()
  await page.waitForFunction(() => document.activeElement?.getAttribute('aria-invalid') === 'true')
  if ((await plateInput.getAttribute('aria-invalid')) !== 'true') fail('the plate field is not marked invalid')
  const described = (await plateInput.getAttribute('aria-describedby')) ?? ''
  const messages = await Promise.all(described.split(' ').map((id) => page.locator(`[id="${id}"]`).textContent()))
  if (!messages.some((x) => x.trim() === plateProblem)) fail(`the plate field says ${JSON.stringify(messages)}, not ${plateProblem}`)
  if (!(await plateInput.evaluate((el) => el === document.activeElement))) fail('focus is not on the plate field')

  step('the plate is corrected and the vehicle registered')
  await plateInput.fill(plate)
  await form.getByRole('button', { name: '保存' }).click()
  await page.getByRole('status').filter({ hasText: `已登记车辆 ${plate}` }).waitFor()
  await page.getByLabel('搜索车牌号').fill(plate)
  await page.getByRole('row').filter({ hasText: plate }).waitFor()
  const vehicle = (await get(opToken, `/api/transport/vehicles?plate=${encodeURIComponent(plate)}`)).items[0]
  if (!vehicle || vehicle.class !== 'dangerous_goods' || vehicle.plate_colour !== 'yellow') fail(`registered as ${JSON.stringify(vehicle)}`)

  step('a terminal is registered')
  await page.getByRole('link', { name: '终端', exact: true }).click()
  await page.getByRole('button', { name: '登记终端' }).click()
  const tform = page.getByRole('form', { name: '登记终端' })
  await tform.getByLabel('终端手机号').fill(phone)
  await tform.getByLabel('终端ID').fill(`E2E${rand(4)}`)
  await tform.getByLabel('制造商ID').fill('70111')
  await tform.getByLabel('终端型号').fill('WQ-808')
  await tform.getByRole('button', { name: '保存' }).click()
  await page.getByRole('status').filter({ hasText: `已登记终端 ${phone}` }).waitFor()

  step('it is bound to the new vehicle, chosen by plate, and the list shows the binding')
  await page.getByLabel('搜索终端手机号').fill(phone)
  const row = page.getByRole('row').filter({ hasText: phone })
  await row.getByRole('button', { name: '绑定' }).click()
  const bform = page.getByRole('form', { name: `绑定车辆：终端 ${phone}` })
  await bform.getByLabel('车牌号').selectOption({ label: plate })
  await bform.getByRole('button', { name: '绑定' }).click()
  await row.getByRole('link', { name: plate }).waitFor()
  await row.getByRole('button', { name: '解绑' }).waitFor()
  const terminal = (await get(opToken, `/api/transport/terminals?phone=${phone}`)).items[0]
  if (terminal.vehicle_id !== vehicle.id) fail(`the terminal is bound to ${terminal.vehicle_id}`)

  step('it is unbound')
  await row.getByRole('button', { name: '解绑' }).click()
  await row.getByRole('button', { name: '绑定' }).waitFor()
  if (await row.getByRole('link', { name: plate }).count()) fail('the unbound terminal still shows the plate')
  if ((await get(opToken, `/api/transport/terminals/${terminal.id}`)).vehicle_id !== null) fail('the terminal is still bound')

  step('the vehicles are exported to .xlsx: the header row and every vehicle the API counts')
  await page.getByRole('link', { name: '车辆', exact: true }).click()
  await page.getByRole('row').filter({ hasText: plate }).waitFor()
  const ownTotal = (await get(opToken, '/api/transport/vehicles?limit=1')).total
  const xlsx = await download(page, '导出 Excel')
  if (!/^车辆_\d{4}-\d{2}-\d{2}\.xlsx$/.test(xlsx.name)) fail(`the file is named ${xlsx.name}`)
  const rows = sheetRows(xlsx.body)
  const header = ['车牌号', '车牌颜色', '车辆类型', '车辆识别代号', '终端手机号', '登记时间']
  if (JSON.stringify(rows[0]) !== JSON.stringify(header)) fail(`the header row is ${JSON.stringify(rows[0])}`)
  if (rows.length - 1 !== ownTotal) fail(`${rows.length - 1} data rows, the API counts ${ownTotal}`)
  const mine = rows.find((r) => r[0] === plate) ?? fail('the new vehicle is not in the export')
  if (mine[2] !== '危险货物运输车' || mine[4] !== '—') fail(`the new vehicle is exported as ${JSON.stringify(mine)}`)
  page.check()
  await signOut(page)

  step('a regulator sees several enterprises\' vehicles, and no registration')
  await signIn(page, 'jt.liu')
  await page.waitForURL(`${base}/`)
  await page.getByRole('link', { name: '车辆', exact: true }).click()
  await page.getByRole('columnheader', { name: '所属企业' }).waitFor()
  const busRows = page.getByRole('row').filter({ hasText: '武清区公共交通有限公司' })
  await busRows.first().waitFor()
  await page.getByRole('row').filter({ hasText: plate }).filter({ hasText: '天津武清顺达危险货物运输有限公司' }).waitFor()
  if (await page.getByRole('button', { name: '登记车辆' }).count()) fail('the regulator is offered to register a vehicle')
  const enterprises = await page.getByLabel('所属企业').locator('option').count()
  if (enterprises < 3) fail(`the enterprise filter offers ${enterprises - 1} enterprises`)
  await page.getByLabel('所属企业').selectOption({ label: '天津武清顺达危险货物运输有限公司' })
  await busRows.first().waitFor({ state: 'detached' })
  await page.getByRole('row').filter({ hasText: plate }).waitFor()
  await page.getByLabel('所属企业').selectOption({ label: '全部企业' })

  step('the regulator\'s export has every vehicle of the domain, more than a page, of several enterprises')
  const allTotal = (await get(regToken, '/api/transport/vehicles?limit=1')).total
  if (allTotal <= 50) fail(`the demo district has only ${allTotal} vehicles`)
  const all = sheetRows((await download(page, '导出 Excel')).body)
  if (all.length - 1 !== allTotal) fail(`${all.length - 1} data rows, the API counts ${allTotal}`)
  const orgColumn = all[0].indexOf('所属企业')
  const distinct = new Set(all.slice(1).map((r) => r[orgColumn]))
  if (orgColumn < 0 || distinct.size < 2) fail(`the export shows the enterprises ${[...distinct]}`)

  step('in English, the CSV export has English titles')
  await page.getByRole('button', { name: 'English' }).click()
  await page.getByRole('heading', { name: 'Vehicles' }).waitFor()
  const csv = await download(page, 'Export to CSV')
  if (!/^Vehicles_\d{4}-\d{2}-\d{2}\.csv$/.test(csv.name)) fail(`the file is named ${csv.name}`)
  const lines = csv.body.toString('utf8').replace(/^\ufeff/, '').trim().split('\r\n')
  if (!lines[0].startsWith('"Plate","Plate colour","Class"')) fail(`the CSV header is ${lines[0]}`)
  if (lines.length - 1 !== allTotal) fail(`${lines.length - 1} CSV rows, the API counts ${allTotal}`)
  await page.getByRole('button', { name: '中文' }).click()

  step('the regulator reads the terminals but may not register, bind or unbind')
  await page.getByRole('link', { name: '终端', exact: true }).click()
  await page.getByLabel('搜索终端手机号').fill(phone)
  await page.getByRole('row').filter({ hasText: phone }).waitFor()
  for (const name of ['登记终端', '绑定', '解绑']) {
    if (await page.getByRole('button', { name: new RegExp(`^${name}`) }).count()) fail(`the regulator is offered ${name}`)
  }

  page.check()
  console.log('registry end-to-end: ok')
} finally {
  await browser.close()
}
