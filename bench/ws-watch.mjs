// Watches an API node's two WebSockets for SECONDS: the alarm desk's (/api/alarms/stream) and
// the live map's (/api/transport/stream); prints how many alarm changes and vehicle changes
// arrived. Used by bench/scale-out.sh: the API node runs neither gateway nor processor, so
// whatever arrives came over NATS. Usage: node --experimental-websocket bench/ws-watch.mjs
// PORT TOKEN SECONDS. Node 20's WebSocket (undici) takes headers as its extension.
const [port, token, seconds] = process.argv.slice(2);
const counts = { alarms: 0, vehicle_changes: 0, snapshots: 0 };
const open = (path, onMessage) => {
  const ws = new WebSocket(`ws://127.0.0.1:${port}${path}`, { headers: { authorization: `Bearer ${token}` } });
  ws.onmessage = (e) => onMessage(JSON.parse(e.data));
  ws.onerror = (e) => console.error(`${path}: ${e.message ?? 'error'}`);
  return ws;
};
const a = open('/api/alarms/stream', (m) => { if (m.type === 'alarm') counts.alarms += 1; });
const t = open('/api/transport/stream', (m) => {
  if (m.type === 'snapshot') counts.snapshots += 1;
  if (m.type === 'changes') counts.vehicle_changes += m.vehicles.length;
});
setTimeout(() => {
  a.close();
  t.close();
  console.log(JSON.stringify(counts));
  process.exit(0);
}, Number(seconds) * 1000);
