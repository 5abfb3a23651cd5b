// Signs in as a demo user on a running platform and saves screenshots of the main pages.
// Usage: node e2e/look.mjs http://127.0.0.1:8080 USER PASSWORD OUT_DIR
import { chromium } from 'playwright-core'
import { mkdirSync } from 'node:fs'

const [base, user, password, out] = process.argv.slice(2)
mkdirSync(out, { recursive: true })
const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
})
const page = await browser.newPage({ viewport: { width: 1366, height: 768 } })
const problems = []
page.on('pageerror', (e) => problems.push(String(e)))
page.on('console', (m) => m.type() === 'error' && problems.push(m.text()))
await page.goto(`${base}/`)
await page.waitForURL(/\/login/)
await page.screenshot({ path: `${out}/login.png` })
await page.getByLabel(/用户名/).fill(user)
await page.getByLabel(/密码/).fill(password)
await page.getByRole('button', { name: '登录' }).click()
await page.waitForURL(`${base}/`)
await page.getByText('在线车辆').first().waitFor()
await page.waitForTimeout(1500)
await page.screenshot({ path: `${out}/overview.png` })
await page.getByRole('link', { name: '报警处置' }).click()
await page.getByText(/实时|正在重连/).waitFor()
await page.waitForTimeout(1500)
await page.screenshot({ path: `${out}/alarms.png` })
if (await page.getByRole('link', { name: '车辆' }).count()) {
  await page.getByRole('link', { name: '车辆' }).click()
  await page.getByRole('table').waitFor()
  await page.screenshot({ path: `${out}/vehicles.png` })
}
console.log(JSON.stringify({ problems }))
await browser.close()
