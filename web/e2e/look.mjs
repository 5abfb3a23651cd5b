// Takes the screenshots of docs/screenshots/ on a running demo district (a fresh `serve --demo`
// that has run for a minute, so that vehicles have tracks): the main pages at 1366×768 as a
// regulator, an operator and the security administrator see them (the transport supervision
// pages with a hazard recorded and reported through the API, the documents, penalties, archives
// and credit pages with the demo's cases, the enterprise's side in English too), and the overview
// and the map at 1920×1080 (a wall display).
// Usage: node e2e/look.mjs BASE_URL DATA_DIR OUT_DIR
import { mkdirSync } from 'node:fs'
import { base, token, get, launch, newPage, signIn, signOut, enrolTotp } from './lib.mjs'

const out = process.argv[4]
if (!out) throw new Error('usage: node e2e/look.mjs BASE_URL DATA_DIR OUT_DIR')
mkdirSync(out, { recursive: true })
const browser = await launch()
const settle = (page, ms = 2500) => page.waitForTimeout(ms)
try {
  const page = await newPage(browser)
  await page.goto(`${base}/`)
  await page.waitForURL(/\/login/)
  await page.screenshot({ path: `${out}/login.png` })

  await signIn(page, 'jt.liu')
  await page.waitForURL(`${base}/`)
  await page.getByText('在线车辆').first().waitFor()
  await settle(page)
  await page.screenshot({ path: `${out}/overview.png` })
  for (const [path, name] of [['/map', 'map'], ['/alarms', 'alarms'], ['/vehicles', 'vehicles'], ['/terminals', 'terminals']]) {
    await page.goto(`${base}${path}`)
    await settle(page, 4000)
    await page.screenshot({ path: `${out}/${name}.png` })
  }
  // A bus with a track, played back.
  const op = await token('bus.sun')
  const bus = (await get(op, '/api/transport/live')).find((v) => v.position)
  await page.goto(`${base}/vehicles/${bus.vehicle_id}/track`)
  await settle(page, 4000)
  await page.screenshot({ path: `${out}/track.png` })

  const wall = await newPage(browser, { width: 1920, height: 1080 })
  await wall.goto(`${base}/login`)
  await signIn(wall, 'jt.liu')
  await wall.waitForURL(`${base}/`)
  await settle(wall, 4000)
  await wall.screenshot({ path: `${out}/overview-1920.png` })
  await wall.goto(`${base}/map`)
  await settle(wall, 5000)
  await wall.screenshot({ path: `${out}/map-1920.png` })

  // The transport supervision pages, as the bureau sees them.
  for (const [path, name] of [
    ['/practitioners', 'practitioners'],
    ['/supervision/vehicles', 'supervision-vehicles'],
    ['/expiry', 'expiry'],
  ]) {
    await page.goto(`${base}${path}`)
    await settle(page)
    await page.screenshot({ path: `${out}/${name}.png` })
  }
  // A vehicle's record opened from the list.
  await page.goto(`${base}/supervision/vehicles?vehicle=${bus.vehicle_id}`)
  await settle(page)
  await page.screenshot({ path: `${out}/supervision-vehicle.png` })
  // A hazard at the bus company with its evidence, reported by the company: the list and the drawer.
  const reg = await token('jt.liu')
  const call = async (tok, method, path, body, headers = { 'content-type': 'application/json' }) => {
    const r = await fetch(`${base}${path}`, { method, headers: { authorization: `Bearer ${tok}`, ...headers }, body })
    if (!r.ok) throw new Error(`${method} ${path} answered ${r.status}: ${await r.text()}`)
    return r.json()
  }
  const upload = (tok, name, text) =>
    call(tok, 'POST', '/api/files', text, { 'content-type': 'text/plain', 'x-file-name': encodeURIComponent(name) })
  const due = new Date(Date.now() + 8 * 3600_000 + 7 * 86_400_000).toISOString().slice(0, 10)
  const evidence = await upload(reg, '现场检查记录.txt', '2 号车灭火器压力不足，安全锤缺失。')
  const hazard = await call(reg, 'POST', '/api/supervision/hazards', JSON.stringify({
    org_id: bus.org_id, vehicle_id: bus.vehicle_id, title: '灭火器压力不足、安全锤缺失', level: 'general',
    description: '现场检查发现该车 2 具灭火器压力不足，车厢安全锤缺失 3 个。', deadline: due, files: [evidence.id],
  }))
  await call(reg, 'POST', '/api/supervision/hazards', JSON.stringify({
    org_id: bus.org_id, title: '动态监控人员配备不足', level: 'major', description: '监控值班表显示夜班仅 1 人在岗。',
  }))
  const photo = await upload(op, '整改照片说明.txt', '已更换灭火器并补齐安全锤。')
  await call(op, 'POST', `/api/supervision/hazards/${hazard.id}/report`, JSON.stringify({ note: '已更换 2 具灭火器，补齐安全锤 3 个。', files: [photo.id] }))
  await page.goto(`${base}/hazards`)
  await settle(page)
  await page.screenshot({ path: `${out}/hazards.png` })
  await page.goto(`${base}/hazards/${hazard.id}`)
  await settle(page)
  await page.screenshot({ path: `${out}/hazard.png` })
  await page.getByRole('button', { name: '退回整改' }).click()
  await settle(page, 500)
  await page.screenshot({ path: `${out}/hazard-review.png` })
  // The bureau's new-hazard form, and the practitioners' form.
  await page.goto(`${base}/hazards`)
  await page.getByRole('button', { name: '新建隐患' }).click()
  await settle(page, 1000)
  await page.screenshot({ path: `${out}/hazard-new.png` })
  // Documents: the list with its progress, a demo document half answered with the bus company's
  // answer open, and the issue form.
  await page.goto(`${base}/documents`)
  await page.getByRole('tab', { name: '全部文件' }).click()
  await settle(page)
  await page.screenshot({ path: `${out}/documents.png` })
  const docs = await get(reg, '/api/supervision/documents?limit=50')
  const answered = docs.items.find((d) => d.requires_report && d.counts.replied > 0 && d.files.length) ?? docs.items[0]
  await page.goto(`${base}/documents/${answered.id}`)
  await settle(page, 1500)
  const replier = (await get(reg, `/api/supervision/documents/${answered.id}`)).recipients.find((r) => r.status === 'replied')
  if (replier) await page.getByRole('button', { name: `查看 ${replier.org_name}` }).click()
  await settle(page, 1000)
  await page.screenshot({ path: `${out}/document.png` })
  await page.goto(`${base}/documents`)
  await page.getByRole('button', { name: '下发文件' }).click()
  await page.getByLabel('报送要求').selectOption({ label: '需要报送' })
  await settle(page, 1000)
  await page.screenshot({ path: `${out}/document-new.png` })
  // Penalties and incidents, a decision's drawer, the record form.
  await page.goto(`${base}/penalties`)
  await settle(page)
  await page.screenshot({ path: `${out}/penalties.png` })
  const fine = (await get(reg, '/api/supervision/penalties?kind=fine')).items[0]
  if (fine) {
    await page.goto(`${base}/penalties/${fine.id}`)
    await settle(page)
    await page.screenshot({ path: `${out}/penalty.png` })
  }
  await page.goto(`${base}/penalties`)
  await page.getByRole('button', { name: '登记处罚决定' }).click()
  await page.getByRole('form', { name: '登记处罚决定' }).getByLabel('类别').selectOption({ label: '罚款' })
  await settle(page, 1000)
  await page.screenshot({ path: `${out}/penalty-new.png` })
  await page.goto(`${base}/incidents`)
  await settle(page)
  await page.screenshot({ path: `${out}/incidents.png` })
  // The archives board with a cell's files, and the kinds dialog.
  await page.goto(`${base}/archives`)
  await settle(page)
  await page.locator('button.cell[data-status="uploaded"]').first().click()
  await settle(page, 500)
  await page.screenshot({ path: `${out}/archives.png` })
  await page.getByRole('button', { name: '管理归档类型' }).click()
  await settle(page, 500)
  await page.screenshot({ path: `${out}/archive-kinds.png` })
  await page.keyboard.press('Escape')
  // Credit: the ranking, an enterprise's deductions, the rules.
  await page.goto(`${base}/credit`)
  await settle(page)
  await page.screenshot({ path: `${out}/credit.png` })
  const ranked = await get(reg, '/api/supervision/credit')
  const worst = ranked[ranked.length - 1]
  await page.goto(`${base}/credit?org=${worst.org_id}`)
  await settle(page)
  await page.screenshot({ path: `${out}/credit-detail.png` })
  await page.goto(`${base}/credit`)
  await page.getByRole('tab', { name: '考核规则' }).click()
  await settle(page)
  await page.screenshot({ path: `${out}/credit-rules.png` })

  await signOut(page)
  // The enterprise's side: its practitioners' form, its inbox, in English too.
  await signIn(page, 'bus.sun')
  await page.waitForURL(`${base}/`)
  await page.goto(`${base}/practitioners`)
  await page.getByRole('button', { name: '登记从业人员' }).click()
  await settle(page)
  await page.screenshot({ path: `${out}/practitioner-new.png` })
  await page.goto(`${base}/expiry`)
  await settle(page)
  await page.screenshot({ path: `${out}/expiry-operator.png` })
  // The enterprise's 待办, a document with its answer form, its archives with the filing form.
  await page.goto(`${base}/documents`)
  await settle(page)
  await page.screenshot({ path: `${out}/documents-operator.png` })
  // A document the company still has to answer (the demo's, or its first with a report) with the
  // answer form when it may answer.
  const mineDocs = await get(op, '/api/supervision/documents?limit=50')
  const toAnswer = mineDocs.items.find((d) => d.requires_report && ['unread', 'read', 'returned'].includes(d.mine.status)) ??
    mineDocs.items.find((d) => d.requires_report)
  if (toAnswer) {
    await page.goto(`${base}/documents/${toAnswer.id}`)
    await page.getByRole('dialog').getByRole('heading').first().waitFor()
    await settle(page, 1000)
    const answer = page.getByRole('dialog').getByRole('button', { name: /报送/ })
    if (await answer.count()) await answer.first().click()
    await settle(page, 1000)
    await page.screenshot({ path: `${out}/document-reply.png` })
  }
  await page.goto(`${base}/archives`)
  await page.getByRole('button', { name: '归档', exact: true }).click()
  await settle(page)
  await page.screenshot({ path: `${out}/archives-operator.png` })
  await page.getByRole('button', { name: 'English' }).click()
  await page.goto(`${base}/hazards`)
  await settle(page)
  await page.screenshot({ path: `${out}/hazards-en.png` })
  await page.goto(`${base}/practitioners`)
  await settle(page)
  await page.screenshot({ path: `${out}/practitioners-en.png` })
  for (const [path, name] of [['/documents', 'documents-en'], ['/penalties', 'penalties-en'], ['/archives', 'archives-en'], ['/credit', 'credit-en']]) {
    await page.goto(`${base}${path}`)
    await settle(page)
    await page.screenshot({ path: `${out}/${name}.png` })
  }
  await page.getByRole('button', { name: '中文' }).click()
  await signOut(page)
  await signIn(page, 'secadmin')
  await enrolTotp(page)
  await page.waitForURL(`${base}/users`)
  await settle(page)
  await page.screenshot({ path: `${out}/users.png` })
  await page.goto(`${base}/security`)
  await settle(page)
  await page.screenshot({ path: `${out}/security.png` })
  page.check()
  wall.check()
} finally {
  await browser.close()
}
