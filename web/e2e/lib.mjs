// What the end-to-end tests share: the browser, the demo's credentials, TOTP codes and signing in.
// Each test file runs against its own fresh `serve --demo` (see run.sh): BASE_URL DATA_DIR.
import { chromium } from 'playwright-core'
import { readFileSync } from 'node:fs'
import { createHmac } from 'node:crypto'

export const [base, data] = process.argv.slice(2)
if (!base || !data) throw new Error('usage: node e2e/<test>.test.mjs BASE_URL DATA_DIR')

/// RFC 6238 (SHA-1, 30 s, 6 digits), as an authenticator app computes it.
export function totp(secret, at = Date.now()) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567'
  let bits = ''
  for (const c of secret.replace(/=+$/, '').toUpperCase()) bits += alphabet.indexOf(c).toString(2).padStart(5, '0')
  const key = Buffer.from(bits.match(/.{8}/g).map((b) => parseInt(b, 2)))
  const counter = Buffer.alloc(8)
  counter.writeBigUInt64BE(BigInt(Math.floor(at / 30_000)))
  const h = createHmac('sha1', key).update(counter).digest()
  const o = h[h.length - 1] & 0xf
  return String((h.readUInt32BE(o) & 0x7fffffff) % 1_000_000).padStart(6, '0')
}

const field = (file, key, col) =>
  readFileSync(`${data}/${file}`, 'utf8').split('\n').map((l) => l.split(' ')).find((f) => f[col] === key)
/// A demo account's initial password (data/demo-accounts.txt).
export const password = (user) => field('demo-accounts.txt', user, 1)[2]
/// A demo sensor's secret (data/demo-devices.txt).
export const deviceSecret = (code) => field('demo-devices.txt', code, 0)[1]

/// A bearer token for a demo account, for set-up and checks through the API.
export async function token(user) {
  const r = await fetch(`${base}/api/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username: user, password: password(user) }),
  })
  if (r.status !== 200) throw new Error(`login of ${user} answered ${r.status}`)
  return (await r.json()).token
}

/// GET through the API with a bearer token.
export async function get(tok, path) {
  const r = await fetch(`${base}${path}`, { headers: { authorization: `Bearer ${tok}` } })
  if (r.status !== 200) throw new Error(`GET ${path} answered ${r.status}`)
  return r.json()
}

export async function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--lang=zh-CN'],
  })
}

/// A page that records uncaught errors; `check()` throws if there were any.
export async function newPage(browser, viewport = { width: 1366, height: 768 }) {
  // As a district office's browser: Chinese, Beijing time (date inputs then read as they would there).
  const page = await browser.newPage({ viewport, locale: 'zh-CN', timezoneId: 'Asia/Shanghai' })
  const crashes = []
  page.on('pageerror', (e) => crashes.push(String(e)))
  page.check = () => {
    if (crashes.length) throw new Error(`page errors: ${crashes.join('; ')}`)
  }
  return page
}

export const step = (what) => console.log(`- ${what}`)

/// Signs in on the login page (the page must show it); for administrators, enrols TOTP and
/// returns the secret.
export async function signIn(page, user, pass = password(user)) {
  await page.getByLabel('用户名').fill(user)
  await page.getByLabel('密码').fill(pass)
  await page.getByRole('button', { name: '登录' }).click()
}

/// An administrator's first sign-in: enrols a TOTP secret and continues; returns the secret.
export async function enrolTotp(page) {
  await page.getByRole('button', { name: '生成密钥' }).click()
  const secret = (await page.getByTestId('totp-secret').textContent()).trim()
  await page.getByLabel('动态口令').fill(totp(secret))
  await page.getByRole('button', { name: '绑定并进入' }).click()
  return secret
}

export async function signOut(page) {
  await page.getByRole('button', { name: /^(退出|Sign out)$/ }).click()
  await page.waitForURL(/\/login/)
}
