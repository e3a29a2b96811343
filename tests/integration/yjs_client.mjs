// A stock Yjs client (npm yjs + y-websocket) for interoperability tests.
// Usage: node yjs_client.mjs <ws-base> <room> <sessionId> <token> <cellId> <text> <waitMs>
// Connects, waits for sync, types <text> at the start of cell <cellId>'s source,
// waits <waitMs> and prints the cells it then holds as JSON on stdout.
import * as Y from 'yjs'
import { WebsocketProvider } from 'y-websocket'
import WebSocket from 'ws'

const [base, room, sessionId, token, cellId, text, waitMs] = process.argv.slice(2)

class AuthWS extends WebSocket {
  constructor (url, protocols) {
    super(url, protocols, { headers: { Authorization: `token ${token}` } })
  }
}

const doc = new Y.Doc()
const provider = new WebsocketProvider(base, room, doc, {
  WebSocketPolyfill: AuthWS, params: { sessionId }, disableBc: true, connect: true
})
const fail = setTimeout(() => { console.error('no sync within 15 s'); process.exit(2) }, 15000)

provider.on('sync', (synced) => {
  if (!synced) return
  clearTimeout(fail)
  const cells = doc.getArray('cells')
  const cell = cells.toArray().find((c) => c.get('id') === cellId)
  if (!cell) { console.error(`no cell ${cellId}`); process.exit(3) }
  if (text) cell.get('source').insert(0, text)
  setTimeout(() => {
    process.stdout.write(JSON.stringify(cells.toJSON()))
    provider.destroy()
    process.exit(0)
  }, Number(waitMs))
})
