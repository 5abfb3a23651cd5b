// How the overview treats a failed read: a 403 means the caller's role may not see that figure
// (its panels are hidden); anything else is shown as the problem's message.
import { ApiError } from '../api'

export const forbidden = (e: unknown) => e instanceof ApiError && e.problem.status === 403

export const message = (e: unknown) => (e instanceof Error ? e.message : String(e))
