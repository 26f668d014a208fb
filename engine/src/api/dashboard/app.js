'use strict';
// The CPRA dashboard: reads the JSON API of the process that served it, nothing else.
// Memory stays flat however long it runs: the table keeps a pool of at most PAGE rows (and the
// detail view pools of RECENT_MAX and INCIDENTS_MAX), reused on every refresh; each refresh
// replaces the last answer instead of adding to it. Text only goes in through textContent.
(() => {
  const PAGE = 100;           // rows a page shows: the API's default page, the most the DOM holds
  const POLL_MS = 5000;       // live refresh: counts and the visible page
  const RECENT_MAX = 20;      // results the API keeps per monitor (RECENT_RESULTS)
  const INCIDENTS_MAX = 20;   // a monitor's incidents shown, newest first
  const TOKEN_KEY = 'cpra-api-token';
  const COLUMNS = ['Name', 'Type', 'State', 'For', 'Reason', 'Last check', 'Latency', 'Incident'];
  const MARKS = { down: '▼', up: '▲', unknown: '?', disabled: '■' };
  const SVG = 'http://www.w3.org/2000/svg';

  const $ = (id) => document.getElementById(id);
  const count = new Intl.NumberFormat('en-US');
  const el = (tag, cls) => {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    return e;
  };

  let timer = 0;
  let generation = 0;
  let aborter = null;
  let rendered = false;
  let detail = null; // the monitor shown in the detail view (its last answer)
  let refreshes = 0;

  function where() {
    const path = location.pathname;
    if (path.startsWith('/monitors/')) {
      return { view: 'detail', id: decodeURIComponent(path.slice('/monitors/'.length)) };
    }
    const p = new URLSearchParams(location.search);
    return { view: 'list', q: p.get('q') || '', state: p.get('state') || '', cursor: p.get('cursor') || '' };
  }

  function listUrl(q, state, cursor) {
    const p = new URLSearchParams();
    if (q) p.set('q', q);
    if (state) p.set('state', state);
    if (cursor) p.set('cursor', cursor);
    const s = p.toString();
    return s ? '/?' + s : '/';
  }

  async function getJson(path, signal) {
    const r = await fetch(path, { signal, cache: 'no-store', headers: { Accept: 'application/json' } });
    const body = await r.json().catch(() => ({}));
    if (!r.ok) throw new Error(body.error || 'HTTP ' + r.status);
    return body;
  }

  function since(iso) {
    if (!iso) return '';
    const s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
    if (s < 60) return s + ' s';
    const m = Math.floor(s / 60);
    if (m < 60) return m + ' min';
    const h = Math.floor(m / 60);
    if (h < 48) return h + ' h ' + (m % 60) + ' min';
    return Math.floor(h / 24) + ' d';
  }

  const ms = (v) => (v == null ? '' : (v < 10 ? v.toFixed(2) : v.toFixed(0)) + ' ms');
  const reason = (f) => (f ? f.kind + ': ' + f.message : '');

  function setState(cell, state, silencedUntil) {
    cell.textContent = '';
    const mark = el('span', 'mark ' + state);
    mark.setAttribute('aria-hidden', 'true');
    mark.textContent = MARKS[state] || '';
    cell.append(mark, ' ' + state);
    cell.className = 'state ' + state;
    if (silencedUntil) {
      const tag = el('span', 'tag');
      tag.textContent = 'silenced';
      tag.title = 'until ' + silencedUntil;
      cell.append(tag);
    }
  }

  // ---- the header: fleet size and counts by state

  async function loadSummary(signal) {
    const s = await getJson('/api/v1/summary', signal);
    return () => {
      $('total').textContent = count.format(s.monitors);
      for (const k of ['down', 'unknown', 'up', 'disabled', 'silenced']) $('n-' + k).textContent = count.format(s[k]);
      $('n-incidents').textContent = count.format(s.incidents_open);
    };
  }

  // ---- the list: one page, rows reused

  const pool = [];

  function rowAt(i) {
    if (!pool[i]) {
      const tr = el('tr');
      const cells = COLUMNS.map((label) => {
        const td = el('td');
        td.dataset.label = label;
        tr.append(td);
        return td;
      });
      const link = el('a');
      cells[0].append(link);
      cells[4].className = 'reason';
      cells[5].className = 'when';
      cells[6].className = 'num';
      pool[i] = { tr, cells, link };
    }
    return pool[i];
  }

  function renderRows(monitors) {
    const body = $('rows');
    const n = Math.min(monitors.length, PAGE);
    for (let i = 0; i < n; i++) {
      const m = monitors[i];
      const r = rowAt(i);
      const c = r.cells;
      r.link.textContent = m.name;
      r.link.href = '/monitors/' + encodeURIComponent(m.id);
      c[1].textContent = m.type;
      setState(c[2], m.state, m.silenced_until);
      c[3].textContent = since(m.state_since);
      c[4].textContent = reason(m.failure);
      c[5].textContent = m.last_check ? since(m.last_check) + ' ago' : 'not yet';
      c[5].title = m.last_check || '';
      c[6].textContent = ms(m.latency_ms);
      c[7].textContent = m.incident_id || '';
      r.tr.className = m.state === 'down' ? 'is-down' : '';
      if (r.tr.parentNode !== body) body.append(r.tr);
    }
    for (let i = n; i < pool.length; i++) pool[i].tr.remove();
  }

  async function loadList(at, signal) {
    const p = new URLSearchParams({ limit: String(PAGE), order: 'state' });
    if (at.q) p.set('q', at.q);
    if (at.state) p.set('state', at.state);
    if (at.cursor) p.set('cursor', at.cursor);
    const page = await getJson('/api/v1/monitors?' + p, signal);
    return () => {
      renderRows(page.monitors);
      let caption = at.state ? 'Monitors ' + at.state : 'Monitors, down first';
      if (at.q) caption += ', name contains “' + at.q + '”';
      $('caption').textContent = caption;
      $('page-info').textContent = page.monitors.length + ' shown of ' + count.format(page.total) + ' matching';
      const next = $('next');
      next.hidden = !page.next;
      next.href = page.next ? listUrl(at.q, at.state, page.next) : '/';
      $('first').hidden = !at.cursor;
      $('first').href = listUrl(at.q, at.state, '');
      if (!rendered) {
        rendered = true;
        // Read by the browser test and the 1M-monitor measurement (docs/dashboard.md).
        document.documentElement.dataset.firstPageMs = String(Math.round(performance.now()));
      }
    };
  }

  // ---- one monitor: facts, chart, recent results, incidents, controls

  const FACTS = ['State', 'For', 'Type', 'Reason', 'Last check', 'Latency', 'Incident', 'Silenced until', 'Groups', 'Id'];
  const facts = {};
  const recentPool = [];
  const incidentPool = [];
  const bars = [];

  function buildDetail() {
    const dl = $('detail-facts');
    for (const name of FACTS) {
      const dt = el('dt');
      dt.textContent = name;
      const dd = el('dd');
      dl.append(dt, dd);
      facts[name] = dd;
    }
    const chart = $('chart');
    for (let i = 0; i < RECENT_MAX; i++) {
      const bar = document.createElementNS(SVG, 'rect');
      const cross = document.createElementNS(SVG, 'path');
      cross.setAttribute('class', 'cross');
      chart.append(bar, cross);
      bars.push({ bar, cross });
    }
  }

  function tableRows(bodyId, poolArr, max, rows, fill) {
    const body = $(bodyId);
    const n = Math.min(rows.length, max);
    for (let i = 0; i < n; i++) {
      if (!poolArr[i]) {
        const tr = el('tr');
        const cells = [el('td'), el('td'), el('td'), el('td')];
        tr.append(...cells);
        poolArr[i] = { tr, cells };
      }
      fill(poolArr[i].cells, rows[i]);
      if (poolArr[i].tr.parentNode !== body) body.append(poolArr[i].tr);
    }
    for (let i = n; i < poolArr.length; i++) poolArr[i].tr.remove();
  }

  function renderChart(recent) {
    // Oldest on the left, newest on the right; 20 slots of 20 units in a 400x100 box.
    const oldestFirst = recent.slice(0, RECENT_MAX).reverse();
    // Scaled to the slowest success: a failure's latency (a timeout) would flatten the rest.
    const top = Math.max(0.001, ...oldestFirst.filter((r) => r.success).map((r) => r.latency_ms));
    let failed = 0;
    bars.forEach(({ bar, cross }, i) => {
      const r = oldestFirst[i];
      if (!r) {
        bar.setAttribute('visibility', 'hidden');
        cross.setAttribute('visibility', 'hidden');
        return;
      }
      const x = i * 20 + 3;
      const h = r.success ? Math.max(2, (r.latency_ms / top) * 92) : 100;
      bar.setAttribute('x', String(x));
      bar.setAttribute('width', '14');
      bar.setAttribute('y', String(100 - h));
      bar.setAttribute('height', String(h));
      bar.setAttribute('class', r.success ? 'ok' : 'fail');
      bar.setAttribute('visibility', 'visible');
      cross.setAttribute('d', 'M' + x + ' 4l14 14M' + (x + 14) + ' 4l-14 14');
      cross.setAttribute('visibility', r.success ? 'hidden' : 'visible');
      if (!r.success) failed++;
    });
    $('chart-desc').textContent = recent.length
      ? recent.length + ' results, ' + failed + ' failed; slowest success ' + ms(top)
      : 'no results yet';
  }

  async function loadDetail(id, signal) {
    const enc = encodeURIComponent(id);
    const [m, inc] = await Promise.all([
      getJson('/api/v1/monitors/' + enc, signal),
      getJson('/api/v1/incidents?limit=' + INCIDENTS_MAX + '&monitor=' + enc, signal),
    ]);
    return () => {
      detail = m;
      $('detail-name').textContent = m.name;
      document.title = m.name + ' · CPRA';
      setState(facts.State, m.state, m.silenced_until);
      facts.For.textContent = since(m.state_since);
      facts.Type.textContent = m.type;
      facts.Reason.textContent = reason(m.failure) || '—';
      facts['Last check'].textContent = m.last_check ? m.last_check + ' (' + since(m.last_check) + ' ago)' : 'not yet';
      facts.Latency.textContent = ms(m.latency_ms) || '—';
      facts.Incident.textContent = m.incident_id || 'none open';
      facts['Silenced until'].textContent = m.silenced_until || 'not silenced';
      facts.Groups.textContent = (m.groups || []).join(', ') || '—';
      facts.Id.textContent = m.id;
      renderChart(m.recent || []);
      tableRows('recent-rows', recentPool, RECENT_MAX, m.recent || [], (c, r) => {
        c[0].textContent = r.at;
        c[1].textContent = r.success ? '▲ success' : '▼ failure';
        c[1].className = r.success ? 'up' : 'down';
        c[2].textContent = ms(r.latency_ms);
        c[3].textContent = r.success ? '' : r.kind + ': ' + r.message;
      });
      tableRows('incident-rows', incidentPool, INCIDENTS_MAX, inc.incidents, (c, r) => {
        c[0].textContent = r.id;
        c[1].textContent = r.opened_at;
        c[2].textContent = r.closed_at || 'open';
        c[3].textContent = r.acknowledged_by || '';
      });
    };
  }

  // ---- control requests, with the token kept in this tab's session storage only

  function showToken() {
    const kept = sessionStorage.getItem(TOKEN_KEY);
    $('token-state').textContent = kept ? 'a token is kept for this tab' : 'no token: control requests will be refused';
  }

  async function control(action) {
    if (!detail) return;
    const out = $('control-result');
    const token = sessionStorage.getItem(TOKEN_KEY) || '';
    let path = '/api/v1/monitors/' + encodeURIComponent(detail.id) + '/' + action;
    let body = '';
    if (action === 'silence') body = JSON.stringify({ for: '1h' });
    if (action === 'ack') {
      if (!detail.incident_id) {
        out.textContent = 'No open incident to acknowledge.';
        return;
      }
      path = '/api/v1/incidents/' + encodeURIComponent(detail.incident_id) + '/ack';
      body = JSON.stringify({ by: 'dashboard' });
    }
    out.textContent = action + '…';
    try {
      const r = await fetch(path, {
        method: 'POST',
        cache: 'no-store',
        headers: { Authorization: 'Bearer ' + token, 'Content-Type': 'application/json' },
        body,
      });
      const answer = await r.json().catch(() => ({}));
      out.textContent = r.ok ? action + ': done' : action + ': refused (' + r.status + ') ' + (answer.error || '');
    } catch (e) {
      out.textContent = action + ': ' + e.message;
    }
    refresh();
  }

  // ---- views, navigation and the refresh loop

  function show(at) {
    const list = at.view === 'list';
    $('list-view').hidden = !list;
    $('detail-view').hidden = list;
    document.body.dataset.view = at.view;
    if (list) {
      document.title = 'CPRA';
      $('q').value = at.q;
      $('state').value = at.state;
      for (const a of document.querySelectorAll('#counts a')) {
        if (a.dataset.state === at.state) a.setAttribute('aria-current', 'page');
        else a.removeAttribute('aria-current');
      }
    } else {
      detail = null;
      $('control-result').textContent = '';
    }
  }

  async function refresh() {
    clearTimeout(timer);
    if (aborter) aborter.abort();
    const mine = ++generation;
    aborter = new AbortController();
    const at = where();
    try {
      const loads = [loadSummary(aborter.signal)];
      loads.push(at.view === 'list' ? loadList(at, aborter.signal) : loadDetail(at.id, aborter.signal));
      const paints = await Promise.all(loads);
      if (mine !== generation) return;
      for (const paint of paints) paint();
      // Read by the browser test: the page's element count stays put however long it polls.
      const root = document.documentElement.dataset;
      root.refreshes = String(++refreshes);
      root.elements = String(document.getElementsByTagName('*').length);
      $('updated').textContent = 'Updated ' + new Date().toLocaleTimeString('en-GB') + ', every ' + POLL_MS / 1000 + ' s';
    } catch (e) {
      if (mine !== generation || e.name === 'AbortError') return;
      $('updated').textContent = 'Cannot read CPRA: ' + e.message + ' (trying again)';
    }
    if (mine === generation) timer = setTimeout(tick, POLL_MS);
  }

  function tick() {
    // A hidden tab asks nothing; it refreshes when it is shown again.
    if (document.hidden) timer = setTimeout(tick, POLL_MS);
    else refresh();
  }

  function go(url) {
    history.pushState(null, '', url);
    show(where());
    refresh();
  }

  document.addEventListener('click', (e) => {
    const a = e.target.closest && e.target.closest('a[href]');
    if (!a || e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey) return;
    const url = new URL(a.href, location.href);
    if (url.origin !== location.origin || url.hash) return;
    if (url.pathname !== '/' && !url.pathname.startsWith('/monitors/')) return;
    e.preventDefault();
    go(url.pathname + url.search);
  });
  window.addEventListener('popstate', () => {
    show(where());
    refresh();
  });
  document.addEventListener('visibilitychange', () => {
    if (!document.hidden) refresh();
  });
  $('filters').addEventListener('submit', (e) => {
    e.preventDefault();
    go(listUrl($('q').value.trim(), $('state').value, ''));
  });
  $('token-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const t = $('token').value.trim();
    if (t) sessionStorage.setItem(TOKEN_KEY, t);
    $('token').value = '';
    showToken();
  });
  $('forget').addEventListener('click', () => {
    sessionStorage.removeItem(TOKEN_KEY);
    showToken();
  });
  for (const b of document.querySelectorAll('#controls button')) {
    b.addEventListener('click', () => control(b.dataset.action));
  }

  buildDetail();
  showToken();
  show(where());
  refresh();
})();
