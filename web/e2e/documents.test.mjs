// End-to-end: a document issued by the bureau and answered by an enterprise (文件报送), against a
// fresh `serve --demo`. The transport regulator issues a document to 武清公交 and 顺达危运 with an
// attachment and a deadline for a report; the bus company's operator finds it unread in its 待办,
// opens it (which signs for it), downloads the attachment and answers with a file; the regulator
// sees the read and answered counts change, returns the answer with a note; the operator answers
// again; the regulator accepts. Each recipient's history is checked in the page at each step,
// and every file downloads as an attachment.
// Usage: node e2e/documents.test.mjs BASE_URL DATA_DIR
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { base, token, get, launch, newPage, signIn, signOut, step } from './lib.mjs'

const fail = (what) => {
  throw new Error(what)
}
const expect = (cond, what) => cond || fail(what)
const inDays = (n) => new Date(Date.now() + 8 * 3600_000 + n * 86_400_000).toISOString().slice(0, 10)

const dir = mkdtempSync(join(tmpdir(), 'wq-doc-'))
const plan = join(dir, '冬季安全检查方案.txt')
writeFileSync(plan, '一、检查范围：全部营运车辆。\n二、报送时限：7 日内。\n')
const answer = join(dir, '公交自查报告.txt')
writeFileSync(answer, '已完成全部 80 辆车的防滑检查。\n')
const again = join(dir, '公交自查报告（补充）.txt')
writeFileSync(again, '补充：附各车队签字确认表。\n')

const title = `关于开展冬季安全检查的通知 ${Date.now() % 100000}`
const BUS = '武清区公共交通有限公司'
const SHUNDA = '天津武清顺达危险货物运输有限公司'
const browser = await launch()
try {
  const page = await newPage(browser)
  const drawer = page.getByRole('dialog')
  const row = () => page.getByRole('row').filter({ hasText: title })
  const recipient = drawer.getByTestId('recipient')
  /// The actions of a timeline, in order.
  const timeline = (where) => where.locator('.history li[data-action]').evaluateAll((ls) => ls.map((l) => l.dataset.action))
  async function expectTimeline(where, want) {
    await where.locator('.history li[data-action]').nth(want.length - 1).waitFor({ timeout: 10_000 }).catch(() => {})
    const got = await timeline(where)
    expect(JSON.stringify(got) === JSON.stringify(want), `history ${JSON.stringify(got)}, expected ${JSON.stringify(want)}`)
  }
  async function expectText(locator, want, what) {
    await locator.filter({ hasText: want }).first().waitFor({ timeout: 10_000 }).catch(() => {})
    const got = (await locator.first().textContent())?.trim()
    expect(got?.includes(want), `${what} should say ${want}, says ${got}`)
  }
  async function expectDownload(where, name) {
    const link = where.getByRole('link', { name }).first()
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
  async function openDocuments(firstTab) {
    await page.getByRole('link', { name: '文件报送' }).click()
    await page.waitForURL(`${base}/documents`)
    const tab = page.getByRole('tab', { name: firstTab })
    await tab.waitFor()
    expect((await tab.getAttribute('aria-selected')) === 'true', `${firstTab} is not the first tab`)
  }
  async function expectRow(present, where) {
    await page.waitForFunction(() => !document.querySelector('table[aria-busy="true"]'))
    if (present) await row().waitFor({ timeout: 10_000 }).catch(() => {})
    else await page.waitForTimeout(500)
    const n = await row().count()
    expect(present ? n === 1 : n === 0, `the document ${present ? 'should' : 'should not'} be in ${where} (${n} rows)`)
  }
  async function openDocument() {
    await row().getByRole('link', { name: title }).click()
    await page.waitForURL(/\/documents\/[0-9a-f-]+$/)
    await drawer.getByRole('heading', { name: title }).waitFor()
  }
  /// The bureau opens one recipient's part in the drawer.
  async function openRecipient(name) {
    await drawer.getByRole('button', { name: `查看 ${name}` }).click()
    await recipient.getByRole('heading', { name }).waitFor()
  }
  const recipientRow = (name) => drawer.locator('table.recipients tr').filter({ hasText: name })

  step('the regulator issues a document to the bus company and shunda with an attachment and a deadline')
  await page.goto(`${base}/login`)
  await signIn(page, 'jt.liu')
  await page.waitForURL(`${base}/`)
  await openDocuments('待处理')
  await page.getByRole('button', { name: '下发文件' }).click()
  const form = page.getByRole('form', { name: '下发文件' })
  await form.getByLabel('文号').fill('武交运〔2026〕88号')
  await form.getByLabel('标题').fill(title)
  await form.getByLabel('正文').fill('请各企业开展冬季车辆防滑检查，并于期限内报送自查报告。')
  // Without an enterprise chosen, the form says so under the picker.
  await form.getByLabel('报送要求').selectOption({ label: '需要报送' })
  await form.getByLabel('报送期限').fill(inDays(7))
  await form.getByRole('button', { name: '下发文件' }).click()
  await form.getByText('请至少选择一家企业').waitFor()
  await form.getByLabel(BUS).check()
  await form.getByLabel(SHUNDA).check()
  await form.getByLabel('附件').setInputFiles(plan)
  await form.getByText('已上传').waitFor()
  await form.getByRole('button', { name: '下发文件' }).click()
  await page.waitForURL(/\/documents\/[0-9a-f-]+$/)
  const docId = page.url().split('/').pop()
  await drawer.getByRole('heading', { name: title }).waitFor()
  await expectText(drawer.getByTestId('doc-counts'), '签收 0/2 · 报送 0/2', 'the counts')
  for (const name of [BUS, SHUNDA]) await expectText(recipientRow(name), '未读', `${name}'s row`)
  expect((await drawer.locator('table.recipients tbody tr').count()) === 2, 'the document should have two recipients')
  await expectDownload(drawer, '冬季安全检查方案.txt')
  await signOut(page)

  step('the bus company finds it unread in its 待办, opens it (signed), downloads the attachment and answers with a file')
  await signIn(page, 'bus.sun')
  await page.waitForURL(`${base}/`)
  await openDocuments('待办')
  await expectRow(true, "the operator's 待办")
  expect((await row().textContent()).includes('未读'), `the row says ${await row().textContent()}`)
  await openDocument()
  await expectText(drawer.getByTestId('doc-status'), '已签收', "the enterprise's status")
  await expectTimeline(drawer, ['read'])
  const text = await expectDownload(drawer, '冬季安全检查方案.txt')
  expect(text.toString('utf8').includes('检查范围'), 'the downloaded attachment is not the one issued')
  // The list follows: signed for, still to answer.
  await expectText(row(), '已签收', 'the list row')
  await drawer.getByRole('button', { name: '报送' }).click()
  await drawer.getByLabel('报送说明').fill('已完成自查，报告见附件。')
  await drawer.getByLabel('报送材料').setInputFiles(answer)
  await drawer.locator('.files .tag.ok').waitFor()
  await drawer.getByRole('button', { name: '报送', exact: true }).click()
  await expectText(drawer.getByTestId('doc-status'), '已报送', "the enterprise's status")
  await expectTimeline(drawer, ['read', 'reply'])
  expect((await drawer.locator('.history li[data-action="reply"]').textContent()).includes('已完成自查'), 'the answer step lacks its note')
  await expectDownload(drawer.locator('.history li[data-action="reply"]'), '公交自查报告.txt')
  await drawer.getByRole('button', { name: '关闭' }).click()
  await expectRow(false, "the operator's 待办 after answering")
  await signOut(page)

  step('the regulator sees the counts change and returns the answer with a note')
  await signIn(page, 'jt.liu')
  await page.waitForURL(`${base}/`)
  await openDocuments('待处理')
  // An answer to review: in the bureau's 待处理, with its progress.
  await expectRow(true, "the regulator's 待处理")
  const progress = await row().getByTestId('doc-progress').getAttribute('title')
  expect(progress === '签收 1/2 · 报送 1/2', `the list's progress says ${progress}`)
  await openDocument()
  await expectText(drawer.getByTestId('doc-counts'), '签收 1/2 · 报送 1/2', 'the counts')
  await expectText(recipientRow(BUS), '已报送', "the bus company's row")
  await expectText(recipientRow(SHUNDA), '未读', "shunda's row")
  await expectDownload(recipientRow(BUS), '公交自查报告.txt')
  await openRecipient(BUS)
  await expectTimeline(recipient, ['read', 'reply'])
  await recipient.getByRole('button', { name: '退回' }).click()
  // The note is required.
  await recipient.getByRole('button', { name: '退回', exact: true }).click()
  await recipient.getByText('此项必填').waitFor()
  await recipient.getByLabel('退回原因').fill('请补充各车队签字确认表。')
  await recipient.getByRole('button', { name: '退回', exact: true }).click()
  await expectText(recipient.getByTestId('recipient-status'), '已退回', "the bus company's status")
  await expectTimeline(recipient, ['read', 'reply', 'return'])
  expect((await recipient.locator('.history li[data-action="return"]').textContent()).includes('签字确认表'), 'the return step lacks its note')
  await expectText(recipientRow(BUS), '已退回', "the bus company's row")
  await expectText(drawer.getByTestId('doc-counts'), '签收 1/2 · 报送 0/2', 'the counts after the return')
  await signOut(page)

  step('the bus company answers again')
  await signIn(page, 'bus.sun')
  await page.waitForURL(`${base}/`)
  await openDocuments('待办')
  await expectRow(true, "the operator's 待办 after the return")
  expect((await row().textContent()).includes('已退回'), `the row says ${await row().textContent()}`)
  await openDocument()
  await expectText(drawer.getByTestId('doc-status'), '已退回', "the enterprise's status")
  await expectTimeline(drawer, ['read', 'reply', 'return'])
  expect((await drawer.locator('.history li[data-action="return"]').textContent()).includes('签字确认表'), 'the enterprise does not see why')
  await drawer.getByRole('button', { name: '重新报送' }).click()
  await drawer.getByLabel('报送说明').fill('已补充签字确认表。')
  await drawer.getByLabel('报送材料').setInputFiles(again)
  await drawer.locator('.files .tag.ok').waitFor()
  await drawer.getByRole('button', { name: '报送', exact: true }).click()
  await expectText(drawer.getByTestId('doc-status'), '已报送', "the enterprise's status")
  await expectTimeline(drawer, ['read', 'reply', 'return', 'reply'])
  await signOut(page)

  step('the regulator accepts it')
  await signIn(page, 'jt.liu')
  await page.waitForURL(`${base}/`)
  await page.goto(`${base}/documents/${docId}`)
  await drawer.getByRole('heading', { name: title }).waitFor()
  await openRecipient(BUS)
  await expectDownload(recipient, '公交自查报告（补充）.txt')
  await recipient.getByRole('button', { name: '通过' }).click()
  await recipient.getByRole('button', { name: '通过', exact: true }).click()
  await expectText(recipient.getByTestId('recipient-status'), '已通过', "the bus company's status")
  await expectTimeline(recipient, ['read', 'reply', 'return', 'reply', 'accept'])
  await expectText(recipientRow(BUS), '已通过', "the bus company's row")
  await expectText(drawer.getByTestId('doc-counts'), '签收 1/2 · 报送 1/2', 'the counts after accepting')
  // The API agrees with the page.
  const doc = await get(await token('jt.liu'), `/api/supervision/documents/${docId}`)
  expect(doc.counts.accepted === 1 && doc.counts.read === 1 && doc.counts.replied === 1, `the API's counts: ${JSON.stringify(doc.counts)}`)
  page.check()
  console.log('ok')
} finally {
  await browser.close()
}
