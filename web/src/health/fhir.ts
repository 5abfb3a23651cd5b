// The FHIR server (/fhir) from the console: same origin, the session cookie; an error is the
// OperationOutcome's first diagnostics. Helpers that read the resources the pages show.
export class FhirError extends Error {
  constructor(public status: number, message: string) {
    super(message)
  }
}

export async function fhir<T = any>(path: string, opts: { reason?: string } = {}): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/fhir+json' }
  // Break-glass: the reason travels percent-encoded (a header carries ASCII only).
  if (opts.reason) headers['x-break-glass-reason'] = encodeURIComponent(opts.reason)
  const resp = await fetch(`/fhir/${path}`, { credentials: 'same-origin', headers })
  const text = await resp.text()
  const json = text ? JSON.parse(text) : undefined
  if (!resp.ok) {
    const d = json?.issue?.[0]?.diagnostics ?? resp.statusText
    throw new FhirError(resp.status, d)
  }
  return json as T
}

/// Creates a resource (POST /fhir/<type>): the answer's status, body and the number of
/// DetectedIssues a prescription check wrote with it. Not-ok answers are returned, not thrown:
/// a refused prescription's OperationOutcome lists the findings to show.
export async function fhirCreate(type: string, body: unknown, override?: string): Promise<{ status: number; json: any; issues: number }> {
  const headers: Record<string, string> = { accept: 'application/fhir+json', 'content-type': 'application/fhir+json' }
  if (override) headers['x-override-reason'] = encodeURIComponent(override)
  const resp = await fetch(`/fhir/${type}`, { method: 'POST', credentials: 'same-origin', headers, body: JSON.stringify(body) })
  const text = await resp.text()
  return { status: resp.status, json: text ? JSON.parse(text) : undefined, issues: Number(resp.headers.get('x-detected-issues') ?? 0) }
}

/// The resources of a searchset Bundle (matches and includes).
export function resources(bundle: any): any[] {
  return (bundle?.entry ?? []).map((e: any) => e.resource).filter((r: any) => r && r.resourceType !== 'OperationOutcome')
}

export const CITIZEN_ID = 'urn:wuqing:sid:citizen-id'

export function nameOf(p: any): string {
  const n = p?.name?.[0]
  if (!n) return '—'
  return n.text ?? `${n.family ?? ''}${(n.given ?? []).join('')}`
}

/// A citizen ID as lists show it: the region and birth date hidden, the last four shown.
export function maskId(v: string | undefined): string {
  if (!v) return '—'
  if (v.includes('*')) return v
  return v.length > 8 ? `${v.slice(0, 4)}${'*'.repeat(v.length - 8)}${v.slice(-4)}` : '****'
}

export function citizenId(p: any): string | undefined {
  return (p?.identifier ?? []).find((i: any) => i.system === CITIZEN_ID)?.value
}

/// Other identifiers (hospital record numbers, insurance cards): system and value.
export function otherIds(p: any): { system: string; value: string }[] {
  return (p?.identifier ?? []).filter((i: any) => i.system !== CITIZEN_ID && i.value)
}

export function codeText(cc: any): string {
  return cc?.text ?? cc?.coding?.[0]?.display ?? cc?.coding?.[0]?.code ?? '—'
}

/// When a clinical resource happened, for the timeline (ISO text, or '').
export function whenOf(r: any): string {
  return (
    r.effectiveDateTime ??
    r.effectivePeriod?.start ??
    r.period?.start ??
    r.onsetDateTime ??
    r.recordedDate ??
    r.authoredOn ??
    r.occurrenceDateTime ??
    r.started ??
    r.date ??
    r.meta?.lastUpdated ??
    ''
  )
}

/// A blood pressure Observation's systolic and diastolic (mmHg), if it is one.
export function bloodPressure(o: any): [number, number] | null {
  if (o.resourceType !== 'Observation' || !o.code?.coding?.some((c: any) => c.code === '85354-9')) return null
  const part = (code: string) => o.component?.find((c: any) => c.code?.coding?.some((x: any) => x.code === code))?.valueQuantity?.value
  const s = part('8480-6')
  const d = part('8462-4')
  return typeof s === 'number' && typeof d === 'number' ? [s, d] : null
}

/// A fasting glucose Observation's value (mmol/L), if it is one.
export function glucose(o: any): number | null {
  if (o.resourceType !== 'Observation' || !o.code?.coding?.some((c: any) => c.code === '1558-6')) return null
  const v = o.valueQuantity?.value
  return typeof v === 'number' ? v : null
}
