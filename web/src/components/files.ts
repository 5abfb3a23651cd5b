// Files attached to a step of a workflow: uploaded first (`POST /api/files`, the raw bytes with
// their media type and the name in X-File-Name), then named by id; downloaded from
// `/api/files/{id}/content`, which answers as an attachment.
import { ApiError, type Problem } from '../api'

export interface FileRef {
  id: string
  name: string
  size: number
  media_type: string
}

/// Uploads one file; `progress` hears the fraction sent (0 to 1). XMLHttpRequest rather than
/// fetch: only it reports an upload's progress.
export function uploadFile(file: File, progress?: (sent: number) => void): Promise<FileRef> {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest()
    xhr.open('POST', '/api/files')
    xhr.withCredentials = true
    // An unknown type goes as octet-stream: the server then goes by the extension.
    xhr.setRequestHeader('content-type', file.type || 'application/octet-stream')
    xhr.setRequestHeader('x-file-name', encodeURIComponent(file.name))
    xhr.upload.onprogress = (e) => e.lengthComputable && progress?.(e.loaded / e.total)
    xhr.onload = () => {
      let body: unknown
      try {
        body = xhr.responseText ? JSON.parse(xhr.responseText) : undefined
      } catch {
        body = undefined
      }
      if (xhr.status >= 200 && xhr.status < 300) {
        progress?.(1)
        resolve(body as FileRef)
      } else {
        const p: Problem =
          body && typeof body === 'object' ? (body as Problem) : { code: 'http', status: xhr.status, detail: xhr.statusText }
        reject(new ApiError(p))
      }
    }
    xhr.onerror = () => reject(new Error('network'))
    xhr.send(file)
  })
}

export const fileUrl = (id: string) => `/api/files/${encodeURIComponent(id)}/content`

/// 1.2 MB, 340 KB, 12 B.
export function size(bytes: number): string {
  if (bytes >= 1024 * 1024) return `${(bytes / 1024 / 1024).toFixed(1)} MB`
  if (bytes >= 1024) return `${Math.round(bytes / 1024)} KB`
  return `${bytes} B`
}
