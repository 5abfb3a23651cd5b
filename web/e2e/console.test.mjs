// End-to-end: the console in headless Chromium (Debian's, driven by playwright-core) against a
// platform the caller started with `serve --demo` (web/e2e/run.sh does both).
// A family doctor signs in; a patient's monitor reports an urgent blood pressure over HTTP; the
// alarm appears on the desk without a reload, is handled and closed; a wrong password and a
// lock-out are shown as the API's messages. Exits non-zero on the first failure.
// Usage: node e2e/console.test.mjs BASE_URL DATA_DIR
import { renderSVG } from 'uqr'
import { base, password, deviceSecret, token, get, launch, newPage, step, totp } from './lib.mjs'

/// A vehicle of the city bus company, read through the API as its own operator.
async function busVehicle() {
  return (await get(await token('bus.sun'), '/api/transport/vehicles?limit=1')).items[0]
}
const foreign = await busVehicle()

const browser = await launch()
try {
  const page = await newPage(browser)

  step('an unknown page without a session leads to the login')
  await page.goto(`${base}/alarms`)
  await page.waitForURL(/\/login\?next=/)

  step('a wrong password is shown as the API says it')
  await page.getByLabel('用户名').fill('dr.wu')
  await page.getByLabel('密码').fill('not-the-password')
  await page.getByRole('button', { name: '登录' }).click()
  await page.getByRole('alert').filter({ hasText: '用户名或密码错误' }).waitFor()

  step('the family doctor signs in and lands where they were going')
  await page.getByLabel('密码').fill(password('dr.wu'))
  await page.getByRole('button', { name: '登录' }).click()
  await page.waitForURL(`${base}/alarms`)
  await page.getByText('实时').waitFor()

  step('an urgent reading from the patient\'s monitor appears live')
  const auth = 'Basic ' + Buffer.from(`YC-BP-0001:${deviceSecret('YC-BP-0001')}`).toString('base64')
  const resp = await fetch(`${base}/api/iot/ingest`, {
    method: 'POST',
    headers: { authorization: auth, 'content-type': 'application/json' },
    body: JSON.stringify({ readings: { bp_systolic: 196 } }),
  })
  if (resp.status !== 200) throw new Error(`ingest answered ${resp.status}: ${await resp.text()}`)
  const row = page.getByRole('row').filter({ hasText: '收缩压危急' })
  await row.waitFor({ timeout: 15_000 })
  await page.getByRole('status').filter({ hasText: '新报警' }).waitFor()
  if ((await row.textContent()).includes('高血压随访对象')) throw new Error('the patient label reached the desk')

  step('it is handled, then closed')
  await row.getByLabel('说明').fill('已电话随访')
  await row.getByRole('button', { name: '处置' }).click()
  await row.getByText('已处置').waitFor()
  await row.getByRole('button', { name: '关闭' }).click()
  await row.waitFor({ state: 'detached' })

  step('English on demand')
  await page.getByRole('button', { name: 'English' }).click()
  await page.getByRole('heading', { name: 'Alarm desk' }).waitFor()
  await page.getByRole('button', { name: '中文' }).click()

  step('an operator lists their vehicles, and cannot open another enterprise\'s by its address')
  await page.getByRole('button', { name: '退出' }).click()
  await page.waitForURL(/\/login/)
  await page.getByLabel('用户名').fill('shunda.zhao')
  await page.getByLabel('密码').fill(password('shunda.zhao'))
  await page.getByRole('button', { name: '登录' }).click()
  await page.waitForURL(`${base}/`)
  await page.getByRole('link', { name: '车辆', exact: true }).click()
  await page.getByRole('row').filter({ hasText: '危险货物运输车' }).first().waitFor()
  if (await page.getByText(foreign.plate).count()) throw new Error('another enterprise\'s vehicle is listed')
  await page.goto(`${base}/vehicles/${foreign.id}`)
  await page.getByRole('alert').filter({ hasText: 'not found' }).waitFor()
  if (await page.getByText(foreign.plate).count()) throw new Error('another enterprise\'s vehicle is shown')

  step('a locked-out user sees why')
  await page.getByRole('button', { name: '退出' }).click()
  await page.waitForURL(/\/login/)
  for (let i = 0; i < 5; i++) {
    await page.getByLabel('用户名').fill('bus.sun')
    await page.getByLabel('密码').fill(`wrong-${i}`)
    await page.getByRole('button', { name: '登录' }).click()
    await page.getByRole('alert').waitFor()
  }
  await page.getByLabel('密码').fill(password('bus.sun'))
  await page.getByRole('button', { name: '登录' }).click()
  await page.getByRole('alert').filter({ hasText: '账户已锁定' }).waitFor()

  step('the audit administrator enrols a second factor and reads the audit log')
  await page.getByLabel('用户名').fill('auditor')
  await page.getByLabel('密码').fill(password('auditor'))
  await page.getByRole('button', { name: '登录' }).click()
  await page.getByRole('button', { name: '生成密钥' }).click()
  const secret = (await page.getByTestId('totp-secret').textContent()).trim()
  // The QR code is the otpauth link that names this secret, drawn as the console draws it.
  const uri = await page.getByRole('link', { name: '用身份验证器打开' }).getAttribute('href')
  if (!uri.startsWith('otpauth://totp/') || !uri.includes(`secret=${secret}`)) throw new Error(`otpauth link: ${uri}`)
  const qr = await page.getByRole('img', { name: '用身份验证器扫描此二维码' }).getAttribute('src')
  if (decodeURIComponent(qr.replace(/^data:image\/svg\+xml;charset=utf-8,/, '')) !== renderSVG(uri)) throw new Error('the QR code is not the otpauth link')
  await page.getByLabel('动态口令').fill(totp(secret))
  await page.getByRole('button', { name: '绑定并进入' }).click()
  await page.waitForURL(`${base}/audit`)
  await page.getByLabel('结果').selectOption('failure')
  await page.getByRole('row').filter({ hasText: 'bus.sun' }).first().waitFor()
  if (await page.getByRole('link', { name: '报警处置' }).count()) throw new Error('the audit administrator sees the alarm desk')

  step('the system administrator enrols too and lists the accounts, phone numbers masked')
  await page.getByRole('button', { name: '退出' }).click()
  await page.waitForURL(/\/login/)
  await page.getByLabel('用户名').fill('sysadmin')
  await page.getByLabel('密码').fill(password('sysadmin'))
  await page.getByRole('button', { name: '登录' }).click()
  await page.getByRole('button', { name: '生成密钥' }).click()
  const secret2 = (await page.getByTestId('totp-secret').textContent()).trim()
  await page.getByLabel('动态口令').fill(totp(secret2))
  await page.getByRole('button', { name: '绑定并进入' }).click()
  await page.waitForURL(`${base}/users`)
  const drRow = page.getByRole('row').filter({ hasText: 'dr.wu' })
  await drRow.waitFor()
  if (!/\*{4}/.test(await drRow.textContent())) throw new Error('a phone number is shown unmasked')
  if (await page.getByRole('link', { name: '审计日志' }).count()) throw new Error('the system administrator sees the audit log')

  page.check()
  console.log('console end-to-end: ok')
} finally {
  await browser.close()
}
