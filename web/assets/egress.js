// Parsing and wording of the admin egress report (GET /api/v1/egress).
//
// Expected shape (the endpoint is defined in the gateway; parsed defensively):
//   [{"camera": "gate-north", "queries": 312, "last_seen": "<RFC 3339>",
//     "vendors": [{"vendor": "hikvision", "name": "Hik-Connect",
//                  "count": 312, "last_seen": "<RFC 3339>"}]}]
// Also accepted: the array wrapped as {"cameras": [...]} or {"egress": [...]};
// "camera_id"/"id" for "camera"; "queries_total"/"total" for "queries";
// "cloud"/"vendor" for "name"; "queries" for "count"; "last"/"last_query" for
// "last_seen"; missing fields are skipped, never fatal.

function str(v) {
  return typeof v === 'string' ? v : '';
}

function num(v) {
  const n = typeof v === 'number' ? v : (typeof v === 'string' ? Number(v) : NaN);
  return Number.isFinite(n) && n >= 0 ? Math.floor(n) : null;
}

function time(v) {
  if (typeof v !== 'string' || v === '') return null;
  const t = Date.parse(v);
  if (Number.isNaN(t) || t <= 0) return null;
  return new Date(t);
}

function first(obj, keys, conv) {
  for (const k of keys) {
    if (obj && Object.prototype.hasOwnProperty.call(obj, k)) {
      const v = conv(obj[k]);
      if (v !== null && v !== '') return v;
    }
  }
  return conv === str ? '' : null;
}

// parseEgress turns the report into Map(cameraId -> {queries, lastSeen,
// vendors: [{name, count, lastSeen}]}), vendors sorted by count, descending.
export function parseEgress(body) {
  let list = body;
  if (list && !Array.isArray(list) && typeof list === 'object') {
    list = list.cameras || list.egress || list.report || [];
  }
  const out = new Map();
  if (!Array.isArray(list)) return out;
  for (const item of list) {
    if (!item || typeof item !== 'object') continue;
    const camera = first(item, ['camera', 'camera_id', 'id'], str);
    if (!camera) continue;
    const vendors = [];
    const raw = Array.isArray(item.vendors) ? item.vendors : [];
    for (const v of raw) {
      if (!v || typeof v !== 'object') continue;
      const name = first(v, ['name', 'cloud', 'vendor'], str);
      if (!name) continue;
      vendors.push({
        name,
        count: first(v, ['count', 'queries'], num),
        lastSeen: first(v, ['last_seen', 'last', 'last_query'], time),
      });
    }
    vendors.sort((a, b) => (b.count || 0) - (a.count || 0));
    out.set(camera, {
      queries: first(item, ['queries', 'queries_total', 'total'], num),
      lastSeen: first(item, ['last_seen', 'last', 'last_query'], time),
      vendors,
    });
  }
  return out;
}

// ago words a past instant relative to now: "just now", "40 s ago",
// "2 min ago", "3 h ago", "5 d ago".
export function ago(date, now) {
  const s = Math.max(0, Math.floor(((now || Date.now()) - date.getTime()) / 1000));
  if (s < 5) return 'just now';
  if (s < 60) return s + ' s ago';
  if (s < 3600) return Math.floor(s / 60) + ' min ago';
  if (s < 86400) return Math.floor(s / 3600) + ' h ago';
  return Math.floor(s / 86400) + ' d ago';
}

function tries(n) {
  return n === 1 ? '1 try' : n + ' tries';
}

// describeEgress words one camera's entry:
// "tries to reach: Hik-Connect (312 tries, last 2 min ago); EZVIZ (3 tries)".
// Returns '' when there is nothing to say.
export function describeEgress(entry, now) {
  if (!entry) return '';
  const parts = entry.vendors.map((v) => {
    const bits = [];
    if (v.count !== null) bits.push(tries(v.count));
    if (v.lastSeen) bits.push('last ' + ago(v.lastSeen, now));
    return bits.length ? v.name + ' (' + bits.join(', ') + ')' : v.name;
  });
  if (parts.length) return 'tries to reach: ' + parts.join('; ');
  if (entry.queries) {
    const last = entry.lastSeen ? ', last ' + ago(entry.lastSeen, now) : '';
    return 'DNS queries: ' + entry.queries + ' (no known vendor cloud' + last + ')';
  }
  return '';
}
