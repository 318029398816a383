// ptbuild dashboard (docs/web.md): reads /api/<op> (the socket's read-only ops) and follows
// /events/watch and /events/log (server-sent events). No build chain, no framework.
'use strict';

const view = document.getElementById('view');
let refreshTimer = null;   // polls progress while builds run
let logSource = null;      // the job page's live log
let renderSeq = 0;         // a slower, older render never overwrites a newer one

// Elements are built with textContent only: variant names and logs are never parsed as HTML.
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k === 'text') el.textContent = v;
    else el.setAttribute(k, v);
  }
  for (const c of children.flat()) if (c !== null && c !== undefined) el.append(c instanceof Node ? c : String(c));
  return el;
}

async function api(op, params) {
  const query = params ? '?' + new URLSearchParams(params) : '';
  const res = await fetch('/api/' + op + query, { cache: 'no-store' });
  const body = await res.json();
  if (!res.ok) throw new Error(body.error ? body.error.message : res.statusText);
  return body;
}

function when(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  const today = new Date().toDateString() === d.toDateString();
  return today ? d.toLocaleTimeString() : d.toLocaleString();
}

function duration(fromIso, toIso) {
  if (!fromIso) return '';
  const s = Math.max(0, Math.round(((toIso ? new Date(toIso) : new Date()) - new Date(fromIso)) / 1000));
  const hh = Math.floor(s / 3600), mm = Math.floor((s % 3600) / 60), ss = s % 60;
  return hh ? `${hh}h${String(mm).padStart(2, '0')}m` : mm ? `${mm}m${String(ss).padStart(2, '0')}s` : `${ss}s`;
}

function badge(state) { return h('span', { class: 'badge state-' + state, text: state }); }

function progressBar(job) {
  const p = job.progress;
  if (!p || !p.total) return h('span', { class: 'muted', text: job.state === 'running' ? 'starting…' : '' });
  const pct = Math.min(100, Math.round((100 * p.done) / p.total));
  const bar = h('span', { class: 'progress', 'data-done': p.done, 'data-total': p.total, title: `${p.done}/${p.total}` });
  const fill = h('span');
  fill.style.width = pct + '%';
  bar.append(fill);
  return h('span', {}, bar, h('span', { class: 'progress-text', text: `${p.done}/${p.total} (${pct}%)` }));
}

function jobLink(id) { return h('a', { href: '#/job/' + id, text: '#' + id }); }

function showScheduler(s) {
  const parts = [`${s.running}/${s.slots} slots busy`];
  if (s.paused) parts.push('paused');
  if (s.draining) parts.push('draining');
  if (s.eta) parts.push(`all done ~${when(s.eta)}`);
  document.getElementById('scheduler').textContent = parts.join(' · ');
}

// ---- the overview: running and queued builds, the matrix, builders --------------------------

function activeTable(jobs, builders) {
  const active = jobs.filter(j => j.state === 'running' || j.state === 'queued');
  if (!active.length) return h('p', { class: 'muted', text: 'Nothing running or queued.' });
  const onlyBuilder = builders.length === 1 ? builders[0].name : '';
  return h('div', { class: 'scroll' }, h('table', { id: 'active' },
    h('thead', {}, h('tr', {}, ['job', 'variant', 'state', 'builder', 'progress', 'running for', 'eta', 'waiting']
      .map(t => h('th', { text: t })))),
    h('tbody', {}, active.map(j => h('tr', { 'data-job': j.id, 'data-state': j.state },
      h('td', {}, jobLink(j.id)),
      h('td', {}, j.variant, j.kind === 'build' ? '' : h('span', { class: 'muted', text: j.rev ? ` (bisect at ${j.rev.slice(0, 7)})` : ` (${j.kind})` })),
      h('td', {}, badge(j.state)),
      h('td', { text: j.state === 'running' ? (j.builder || onlyBuilder) : '' }),
      h('td', {}, j.state === 'running' ? progressBar(j) : ''),
      h('td', { text: j.state === 'running' ? duration(j.started_at) : '' }),
      h('td', { text: j.eta ? when(j.eta) : '' }),
      h('td', { class: 'wrap muted', text: j.waiting || '' }))))));
}

function matrixSections(variants) {
  // One grid per CUDA version (CPU-only variants together): rows are GPU architectures, columns
  // instruction sets, one coloured cell per variant.
  const groups = new Map();
  for (const v of variants) {
    const key = v.cuda ? 'CUDA ' + v.cuda.replace('_', '.') : (v.platform === 'darwin' ? 'macOS' : 'CPU');
    if (!groups.has(key)) groups.set(key, []);
    groups.get(key).push(v);
  }
  const legend = h('div', { class: 'legend' }, ['succeeded', 'failed', 'running', 'queued', 'cancelled', 'none']
    .map(s => h('span', {}, h('span', { class: 'cell', 'data-state': s }), ' ' + (s === 'none' ? 'never built' : s))));
  const sections = [...groups.keys()].sort(byNumber).map(key => {
    const vs = groups.get(key);
    const archs = [...new Set(vs.map(v => v.gpu_arch || 'cpu'))].sort(byNumber);  // sm86 before sm120
    const isas = [...new Set(vs.map(v => v.isa || '—'))].sort(byNumber);
    return h('section', { class: 'matrix', 'data-cuda': key },
      h('h2', { text: `${key} · ${vs.length} variant${vs.length === 1 ? '' : 's'}` }),
      h('div', { class: 'scroll' }, h('table', { class: 'grid' },
        h('thead', {}, h('tr', {}, h('th', {}), isas.map(i => h('th', { text: i })))),
        h('tbody', {}, archs.map(a => h('tr', {}, h('th', { class: 'axis', text: a }),
          isas.map(i => h('td', {}, vs.filter(v => (v.gpu_arch || 'cpu') === a && (v.isa || '—') === i).map(cell)))))))));
  });
  return [legend, ...sections];
}

function byNumber(a, b) { return a.localeCompare(b, undefined, { numeric: true }); }

function cell(v) {
  const state = v.last_state || 'none';
  const label = [v.python, v.extra].filter(Boolean).join(' ') || state;
  const attrs = { class: 'cell', 'data-variant': v.name, 'data-state': state, title: `${v.name}: ${state}` };
  if (v.last_job) return h('a', { ...attrs, href: '#/job/' + v.last_job, text: label });
  return h('span', { ...attrs, text: label });
}

// ---- pictures: memory and disk bars, the fleet's timeline, a variant's history -------------

function size(bytes) {
  if (bytes === null || bytes === undefined) return '';
  return bytes >= 2 ** 30 ? (bytes / 2 ** 30).toFixed(1) + ' GiB' : Math.round(bytes / 2 ** 20) + ' MiB';
}

// One horizontal bar: segments [{share 0..1, class, label, title, href}], an optional marker.
function bar(segments, marker) {
  const el = h('div', { class: 'bar' });
  let at = 0;
  for (const seg of segments) {
    const share = Math.max(0, Math.min(1 - at, seg.share));
    if (share <= 0) continue;
    const part = h(seg.href ? 'a' : 'span', { class: 'seg ' + (seg.class || ''), title: seg.title || '', href: seg.href || null,
      text: share > 0.08 ? seg.label || '' : '' });
    part.style.left = (100 * at) + '%';
    part.style.width = (100 * share) + '%';
    el.append(part);
    at += share;
  }
  if (marker) {
    const m = h('span', { class: 'marker', title: marker.title });
    m.style.left = (100 * Math.min(1, Math.max(0, marker.at))) + '%';
    el.append(m);
  }
  return el;
}

// A builder's memory: what each of its builds holds (or is expected to), the reserve, the rest.
function memoryBar(b) {
  const r = b.resources;
  if (!r || !r.memory_total) return h('span', { class: 'muted', text: 'not read yet' });
  const total = r.memory_total;
  const segs = (r.holding || []).map((x, i) => ({ share: x.memory / total, class: 'held' + (i % 2 ? ' alt' : ''),
    label: '#' + x.job, title: `#${x.job} holds ${size(x.memory)}`, href: '#/job/' + x.job }));
  const held = (r.holding || []).reduce((sum, x) => sum + x.memory, 0);
  const other = Math.max(0, total - r.memory_available - held);  // what else the machine uses
  segs.push({ share: other / total, class: 'other', title: `${size(other)} used by the rest of the machine` });
  segs.push({ share: r.reserve / total, class: 'reserve', label: 'reserve', title: `${size(r.reserve)} kept for the system` });
  return h('div', { class: 'resource', 'data-resource': 'memory' }, bar(segs),
    h('span', { class: 'bar-text', text: `memory ${size(held)} held by ${(r.holding || []).length} build(s), ${size(r.memory_available)} available of ${size(total)}` }));
}

// Its store's file system: what the running builds' directories take (where they are on the same
// file system), the rest used, free, and where min_free is.
function diskBar(b) {
  const r = b.resources;
  if (!r || !r.store_size) return null;
  const used = Math.max(0, r.store_size - r.store_free);
  const low = r.store_free < r.min_free;
  // Read a moment apart while builds write: the same file system when within 1%.
  const sameFs = Math.abs(r.build_dir_free - r.store_free) < r.store_size / 100;
  const dirs = sameFs ? (r.holding || []).filter(x => x.build_dir) : [];
  const segs = dirs.map((x, i) => ({ share: x.build_dir / r.store_size, class: 'held' + (i % 2 ? ' alt' : ''),
    label: '#' + x.job, title: `#${x.job}'s build directory takes ${size(x.build_dir)}`, href: '#/job/' + x.job }));
  const inDirs = dirs.reduce((sum, x) => sum + x.build_dir, 0);
  const rest = Math.max(0, used - inDirs);
  segs.push({ share: rest / r.store_size, class: low ? 'full' : 'used', label: size(rest), title: `${size(rest)} used` });
  return h('div', { class: 'resource', 'data-resource': 'disk', 'data-low': low ? 'true' : null },
    bar(segs,
      { at: (r.store_size - r.min_free) / r.store_size, title: `min_free ${size(r.min_free)}: below it nothing new starts` }),
    h('span', { class: 'bar-text', text: `disk ${size(r.store_free)} free of ${size(r.store_size)} (min_free ${size(r.min_free)})` +
      (dirs.length ? `, ${size(inDirs)} in ${dirs.length} build director${dirs.length > 1 ? 'ies' : 'y'}` : '') }));
}

const SVG = 'http://www.w3.org/2000/svg';
function s(tag, attrs, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) if (v !== null && v !== undefined) el.setAttribute(k, v);
  for (const c of children.flat()) if (c) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return el;
}

// Which build ran where and when over the last 24 h: a lane per build running at once on a builder.
// The axis starts at the first of those builds (a quiet day is not 23 empty hours).
function timeline(jobs, builders) {
  const now = Date.now(), day = now - 24 * 3600 * 1000;
  const runs = jobs.filter(j => j.kind === 'build' && j.started_at && j.builder &&
    (!j.finished_at || new Date(j.finished_at).getTime() > day))
    .map(j => ({ job: j, start: Math.max(day, new Date(j.started_at).getTime()),
      end: j.finished_at ? new Date(j.finished_at).getTime() : now }))
    .sort((a, b) => a.start - b.start);
  if (!runs.length) return h('p', { class: 'muted', text: 'No build ran in the last 24 hours.' });
  const from = Math.max(day, runs[0].start - 0.05 * (now - runs[0].start) - 1000);
  const names = [...new Set([...builders.map(b => b.name), ...runs.map(r => r.job.builder)])];
  const lanes = new Map(names.map(n => [n, []]));  // builder -> each lane's last end
  for (const r of runs) {
    const ends = lanes.get(r.job.builder);
    let lane = ends.findIndex(e => e <= r.start);
    if (lane < 0) { lane = ends.length; ends.push(0); }
    ends[lane] = r.end;
    r.lane = lane;
  }
  const W = 1000, left = 120, rowH = 16, gap = 8;
  let y = 18;
  const rows = [], top = new Map();
  for (const n of names) {
    const count = Math.max(1, lanes.get(n).length);
    top.set(n, y);
    rows.push(s('text', { x: 4, y: y + rowH * count / 2 + 4, class: 'tl-name' }, n));
    rows.push(s('line', { x1: left, x2: W, y1: y + rowH * count + gap / 2, y2: y + rowH * count + gap / 2, class: 'tl-rule' }));
    y += rowH * count + gap;
  }
  const x = t => left + (W - left) * (t - from) / (now - from);
  // Ticks back from now, at a step that gives a handful of them.
  const steps = [[10e3, 's', 1e3], [60e3, 'm', 60e3], [300e3, 'm', 60e3], [900e3, 'm', 60e3], [3600e3, 'h', 3600e3],
    [3 * 3600e3, 'h', 3600e3], [6 * 3600e3, 'h', 3600e3]];
  const [step, unit, per] = steps.find(([ms]) => (now - from) / ms <= 6) || steps[steps.length - 1];
  const ticks = [];
  for (let t = now; t >= from; t -= step) {
    const ago = Math.round((now - t) / per);
    ticks.push(s('line', { x1: x(t), x2: x(t), y1: 14, y2: y, class: 'tl-tick' }),
      s('text', { x: x(t), y: 11, class: 'tl-label', 'text-anchor': ago ? 'middle' : 'end' }, ago ? `-${ago}${unit}` : 'now'));
  }
  const bars = runs.map(r => s('a', { href: '#/job/' + r.job.id },
    s('rect', { x: x(r.start), y: top.get(r.job.builder) + r.lane * rowH + 1, width: Math.max(2, x(r.end) - x(r.start)),
      height: rowH - 2, rx: 2, class: 'tl-bar state-' + r.job.state, 'data-job': r.job.id },
      s('title', {}, `#${r.job.id} ${r.job.variant} on ${r.job.builder}: ${r.job.state}, ${duration(r.job.started_at, r.job.finished_at)}`))));
  return s('svg', { id: 'timeline', viewBox: `0 0 ${W} ${y}`, role: 'img', 'aria-label': 'builds over the last 24 hours' },
    ...ticks, ...rows, ...bars);
}

// A variant's last builds, oldest first: how long each took and the most memory it used.
function historyChart(jobs, current) {
  const built = jobs.filter(j => j.kind === 'build' && j.started_at && j.finished_at).reverse();
  if (built.length < 1) return h('p', { class: 'muted', text: 'No finished build of this variant yet.' });
  const secs = j => (new Date(j.finished_at) - new Date(j.started_at)) / 1000;
  const peak = j => (j.resources && j.resources.peak_memory) || 0;
  const W = 1000, H = 120, left = 70, n = built.length, slot = (W - left) / n;
  const chart = (title, value, text, cls) => {
    const most = Math.max(1, ...built.map(value));
    const bars = built.map((j, i) => {
      const v = value(j), bh = (H - 20) * v / most;
      return s('a', { href: '#/job/' + j.id }, s('rect', { x: left + i * slot + slot * 0.15, y: H - 4 - bh, width: slot * 0.7, height: Math.max(v ? 1 : 0, bh),
        class: 'hist-bar ' + cls + (j.id === current ? ' current' : '') + ' state-' + j.state, 'data-job': j.id },
        s('title', {}, `#${j.id}: ${text(v)} (${j.state})`)));
    });
    return s('svg', { class: 'history', viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': title },
      s('text', { x: 4, y: 14, class: 'tl-name' }, title), s('text', { x: 4, y: 32, class: 'tl-label' }, text(most)),
      s('line', { x1: left, x2: W, y1: H - 4, y2: H - 4, class: 'tl-rule' }), ...bars);
  };
  const fmt = v => duration(new Date(0).toISOString(), new Date(v * 1000).toISOString());
  return h('div', { id: 'job-history' }, chart('duration', secs, fmt, 'dur'),
    built.some(peak) ? chart('peak memory', peak, size, 'mem') : h('p', { class: 'muted', text: 'No peak memory measured for its builds.' }));
}

function buildersTable(builders) {
  return h('div', { class: 'scroll' }, h('table', { id: 'builders' },
    h('thead', {}, h('tr', {}, ['builder', 'state', 'running', 'slots', 'memory and disk', 'systems', 'features', 'done', 'last error']
      .map(t => h('th', { text: t })))),
    h('tbody', {}, builders.map(b => h('tr', { 'data-builder': b.name },
      h('td', { text: b.name, title: b.uri || '' }), h('td', { class: 'wrap', text: b.state }),
      h('td', { text: b.running }), h('td', { text: b.slots }),
      h('td', { class: 'resources' }, memoryBar(b), diskBar(b)),
      h('td', { text: (b.systems || []).join(', ') }),
      h('td', { text: (b.supported_features || []).join(', ') +
        ((b.mandatory_features || []).length ? ' (must: ' + b.mandatory_features.join(', ') + ')' : '') }),
      h('td', { text: b.done ?? '' }), h('td', { class: 'wrap', text: b.last_error || '' }))))));
}

async function overview(seq) {
  const [status, matrix, recent] = await Promise.all([api('status'), api('matrix'), api('jobs', { limit: 1000 })]);
  if (seq !== renderSeq) return;
  showScheduler(status.scheduler);
  view.replaceChildren(
    h('section', {}, h('h1', { text: 'Running and queued' }), activeTable(status.jobs, status.scheduler.builders)),
    ...matrixSections(matrix.variants),
    h('section', {}, h('h2', { text: 'Builders' }), buildersTable(status.scheduler.builders)),
    h('section', {}, h('h2', { text: 'The fleet, last 24 hours' }), timeline(recent.jobs, status.scheduler.builders)));
  pollWhile(status.jobs.some(j => j.state === 'running'));
}

// ---- a job -------------------------------------------------------------------------------

function factsList(facts) {
  return h('dl', {}, Object.entries(facts || {}).flatMap(([k, v]) =>
    [h('dt', { text: k }), h('dd', { text: typeof v === 'object' ? JSON.stringify(v) : String(v) })]));
}

async function jobPage(seq, id) {
  const job = await api('show', { job: id });
  const past = job.kind === 'build' ? await api('jobs', { variant: job.variant, limit: 30 }) : { jobs: [] };
  // A verified build's provenance (docs/provenance.md); none for the others.
  const provenance = job.kind === 'build' && job.verify && job.verify.ok
    ? await api('provenance', { job: job.id }).catch(() => null) : null;
  if (seq !== renderSeq) return;
  const info = h('dl', {},
    h('dt', { text: 'state' }), h('dd', {}, badge(job.state)),
    job.waiting ? [h('dt', { text: 'waiting' }), h('dd', { id: 'job-waiting', text: job.waiting })] : [],
    job.builder ? [h('dt', { text: 'builder' }), h('dd', { id: 'job-builder', text: job.builder })] : [],
    h('dt', { text: 'kind' }), h('dd', { text: job.kind }),
    job.rev ? [h('dt', { text: 'commit' }), h('dd', {}, h('code', { text: job.rev }), ' (bisect: built from a worktree)')]
      : job.commit ? [h('dt', { text: 'commit' }), h('dd', {}, h('code', { text: job.commit }))] : [],
    h('dt', { text: 'attempt' }), h('dd', { text: job.attempt }),
    h('dt', { text: 'reason' }), h('dd', { text: job.reason || '' }),
    h('dt', { text: 'queued' }), h('dd', { text: when(job.created_at) }),
    job.started_at ? [h('dt', { text: 'started' }), h('dd', { text: when(job.started_at) })] : [],
    job.finished_at ? [h('dt', { text: 'finished' }), h('dd', { text: `${when(job.finished_at)} (${duration(job.started_at, job.finished_at)})` })] : [],
    job.state === 'running' ? [h('dt', { text: 'progress' }), h('dd', {}, progressBar(job))] : [],
    job.out_path ? [h('dt', { text: 'output' }), h('dd', {}, h('code', { text: job.out_path }))] : []);
  const parts = [h('section', { id: 'job', 'data-job': job.id, 'data-state': job.state },
    h('h1', { text: `#${job.id} ${job.variant}` }), info)];
  if (job.failure) {
    const f = job.failure;
    parts.push(h('section', { id: 'job-failure' }, h('h2', {}, 'Failure: ', h('code', { class: 'class', text: f.class })),
      h('p', { class: 'message', text: f.message }),
      f.hint ? h('p', { class: 'hint', text: f.hint }) : null,
      f.excerpt ? h('pre', { class: 'excerpt', text: f.excerpt }) : null));
  }
  if (job.changes && job.changes.summary) {
    const c = job.changes;
    parts.push(h('section', { id: 'job-changes' },
      h('h2', {}, c.since ? ['What changed since ', jobLink(c.since)] : 'What changed'),
      h('ul', {}, c.summary.map(line => h('li', { text: line }))),
      (c.commits || []).length ? h('p', { class: 'muted', text: `ptbuild changes ${job.id} lists every difference` }) : null));
  }
  if (job.fixes && job.fixes.length) {
    parts.push(h('section', { id: 'job-fixes' }, h('h2', { text: 'Hash repairs' }),
      h('ul', {}, job.fixes.map(x => h('li', {},
        h('code', { text: `${x.file}:${x.line}` }), ' ', h('code', { class: 'old', text: x.old }), ' → ',
        h('code', { class: 'new', text: x.new }))))));
  }
  if (job.verify) {
    parts.push(h('section', { id: 'job-verify' }, h('h2', {}, 'Verification: ', badge(job.verify.ok ? 'succeeded' : 'failed')),
      (job.verify.problems || []).map(p => h('p', { class: 'problem', text: p })),
      factsList(job.verify.facts)));
  }
  if (provenance && provenance.statement) {
    const st = provenance.statement, sigs = provenance.envelope.signatures || [];
    const params = st.predicate.buildDefinition.externalParameters;
    parts.push(h('section', { id: 'job-provenance' }, h('h2', { text: 'Provenance' }),
      h('dl', {},
        h('dt', { text: 'signed by' }), h('dd', { class: 'signed', text: sigs.length ? sigs.map(x => x.keyid).join(', ') : 'nobody (no publish.signing_key)' }),
        h('dt', { text: 'NAR sha256' }), h('dd', {}, h('code', { text: st.subject[0].digest.sha256 })),
        h('dt', { text: 'repository' }), h('dd', { text: `${params.repository} @ ${params.commit || '?'}` }),
        h('dt', { text: 'recipe' }), h('dd', { text: params.recipe })),
      h('p', { class: 'muted', text: `ptbuild provenance ${job.id} --verify --public-key KEY checks it offline` })));
  }
  if (job.kind === 'build')
    parts.push(h('section', {}, h('h2', { text: `History of ${job.variant}` }), historyChart(past.jobs, job.id)));
  const log = h('pre', { id: 'job-log' });
  parts.push(h('section', {}, h('h2', { text: job.state === 'running' ? 'Log (live)' : 'Log (tail)' }), log));
  view.replaceChildren(...parts);
  followLog(job.id, log);
  pollWhile(job.state === 'running' || job.state === 'queued');
}

function followLog(id, pre) {
  if (logSource) logSource.close();
  logSource = new EventSource(`/events/log?job=${id}&tail=200&follow=true`);
  let text = '';
  logSource.onmessage = e => {
    const line = JSON.parse(e.data);
    if (line.event === 'log') {
      const atBottom = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 8;
      text = (text + line.data.text).slice(-200000);  // the page keeps the tail, not the whole log
      pre.textContent = text;
      if (atBottom) pre.scrollTop = pre.scrollHeight;
    } else if ('ok' in line) {
      logSource.close();  // the job ended: its page is redrawn by the watch stream
      if (!line.ok) pre.textContent = line.error.message;
    }
  };
}

// ---- builders, fixes ------------------------------------------------------------------------

async function buildersPage(seq) {
  const [status, recent] = await Promise.all([api('status'), api('jobs', { limit: 1000 })]);
  if (seq !== renderSeq) return;
  showScheduler(status.scheduler);
  view.replaceChildren(h('section', {}, h('h1', { text: 'Builders' }), buildersTable(status.scheduler.builders)),
    h('section', {}, h('h2', { text: 'The fleet, last 24 hours' }), timeline(recent.jobs, status.scheduler.builders)));
}

async function fixesPage(seq) {
  const { fixes } = await api('fixes');
  if (seq !== renderSeq) return;
  view.replaceChildren(h('section', {}, h('h1', { text: 'Hash repairs' }),
    fixes.length ? h('div', { class: 'scroll' }, h('table', { id: 'fixes' },
      h('thead', {}, h('tr', {}, ['job', 'variant', 'where', 'old', 'new', 'at'].map(t => h('th', { text: t })))),
      h('tbody', {}, fixes.map(f => h('tr', {}, h('td', {}, jobLink(f.job)), h('td', { text: f.variant }),
        h('td', {}, h('code', { text: `${f.file}:${f.line}` })), h('td', {}, h('code', { text: f.old })),
        h('td', {}, h('code', { text: f.new })), h('td', { text: when(f.at) }))))))
      : h('p', { class: 'muted', text: 'No hash has been repaired.' })));
}

// ---- routing and live updates ---------------------------------------------------------------

function pollWhile(busy) {
  clearTimeout(refreshTimer);
  if (busy) refreshTimer = setTimeout(render, 2000);  // progress moves between job events
}

async function render() {
  const seq = ++renderSeq;
  const route = location.hash.replace(/^#\/?/, '').split('/');
  if (route[0] !== 'job' && logSource) { logSource.close(); logSource = null; }
  try {
    if (route[0] === 'job' && /^\d+$/.test(route[1] || '')) {
      const keepLog = logSource && logSource.readyState !== EventSource.CLOSED && view.querySelector(`#job[data-job="${route[1]}"]`);
      if (keepLog) return await refreshJobHeader(seq, route[1]);
      await jobPage(seq, route[1]);
    } else if (route[0] === 'builders') await buildersPage(seq);
    else if (route[0] === 'fixes') await fixesPage(seq);
    else await overview(seq);
  } catch (err) {
    if (seq === renderSeq) view.replaceChildren(h('p', { class: 'error', text: 'ptbuildd: ' + err.message }));
    pollWhile(true);
  }
}

// On the job page while its log streams, only the facts above the log are redrawn.
async function refreshJobHeader(seq, id) {
  const job = await api('show', { job: id });
  if (seq !== renderSeq) return;
  const section = view.querySelector('#job');
  if (job.state !== section.dataset.state) return jobPage(seq, id);
  const bar = section.querySelector('.progress');
  if (bar && job.progress) bar.parentElement.replaceWith(progressBar(job));
  pollWhile(job.state === 'running' || job.state === 'queued');
}

let redrawSoon = null;
function watch() {
  const live = document.getElementById('live');
  const source = new EventSource('/events/watch');
  source.onopen = () => live.classList.add('on');
  source.onerror = () => live.classList.remove('on');  // the browser reconnects by itself
  source.onmessage = () => {  // a job started or ended
    clearTimeout(redrawSoon);
    redrawSoon = setTimeout(render, 250);
  };
}

window.addEventListener('hashchange', render);
render();
watch();
