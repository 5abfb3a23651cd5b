// A WebSocket to one of the platform's streams (/api/alarms/stream, /api/transport/stream) that
// comes back by itself: it reconnects 3 s after a loss until `stop()`, and says whether it is
// open now. `onOpen` hears each opening and whether it is a reconnection (the caller may have
// missed changes meanwhile). When a connection closes before it ever opened and a `probe` is
// given (a cheap GET that answers with the problem the upgrade would), a problem that no retry
// fixes (not signed in, not allowed) ends the retries and is kept in `failed`, as the API says it.
import { ref, type Ref } from 'vue'
import { api, ApiError } from './api'

export interface LiveSocket {
  open: Ref<boolean>
  /// Why the socket gave up, or ''.
  failed: Ref<string>
  /// Sends a message if the socket is open (e.g. the map's bounds).
  send: (m: unknown) => void
  stop: () => void
}

const RETRY_MS = 3000

export function liveSocket<M>(
  path: string,
  onMessage: (m: M) => void,
  opts: { onOpen?: (again: boolean) => void; probe?: string } = {},
): LiveSocket {
  const open = ref(false)
  const failed = ref('')
  let ws: WebSocket | null = null
  let retry: number | undefined
  let everOpened = false
  let stopped = false

  function connect() {
    const proto = location.protocol === 'https:' ? 'wss' : 'ws'
    let opened = false
    ws = new WebSocket(`${proto}://${location.host}${path}`)
    ws.onopen = () => {
      opened = true
      open.value = true
      opts.onOpen?.(everOpened)
      everOpened = true
    }
    ws.onmessage = (ev) => onMessage(JSON.parse(ev.data) as M)
    ws.onclose = async () => {
      open.value = false
      if (stopped) return
      if (!opened && opts.probe) {
        try {
          await api('GET', opts.probe)
        } catch (e) {
          if (e instanceof ApiError && [401, 403].includes(e.problem.status)) {
            failed.value = e.message
            return
          }
        }
        if (stopped) return
      }
      retry = window.setTimeout(connect, RETRY_MS)
    }
  }

  function send(m: unknown) {
    if (ws?.readyState === WebSocket.OPEN) ws.send(JSON.stringify(m))
  }

  function stop() {
    stopped = true
    window.clearTimeout(retry)
    if (ws) {
      ws.onclose = null
      ws.onmessage = null
      ws.close()
    }
    open.value = false
  }

  connect()
  return { open, failed, send, stop }
}
