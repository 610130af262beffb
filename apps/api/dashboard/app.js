// The evop dashboard: a client of the public REST API only. The API key lives in sessionStorage (this tab only).
const KEY = 'evop-api-key';
const view = document.getElementById('view');
const banner = document.getElementById('banner');
const signOut = document.getElementById('sign-out');
const TERMINAL = new Set(['succeeded', 'failed', 'cancelled']);
let cleanup = () => {};

const esc = (s) => String(s ?? '').replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const html = (strings, ...values) =>
  strings.reduce((out, s, i) => out + s + (i < values.length ? (values[i]?.raw ?? esc(values[i])) : ''), '');
const raw = (s) => ({ raw: s });
const age = (iso) => {
  const s = Math.max(0, (Date.now() - new Date(iso).getTime()) / 1000);
  return s < 90
    ? `${Math.round(s)} s`
    : s < 5400
      ? `${Math.round(s / 60)} min`
      : `${(s / 3600).toFixed(1)} h`;
};
const ppl = (nll) => (nll == null ? '-' : Math.exp(nll).toFixed(3));
// A spec's target in words, as report.html says it (targetText in packages/pipeline).
const targetText = (t) =>
  'units' in t
    ? `${t.units} units`
    : 'fraction' in t
      ? `${t.fraction * 100}% of units`
      : `${t.paramFraction * 100}% of parameters`;

function showBanner(message, kind = 'warn') {
  banner.textContent = message;
  banner.className = kind === 'error' ? 'error' : '';
  banner.hidden = false;
}
const hideBanner = () => {
  banner.hidden = true;
};

class Unauthorized extends Error {}

/** A call to the REST API; a problem+json answer becomes an Error with its detail. */
async function api(path, options = {}) {
  let response;
  try {
    response = await fetch(path, {
      ...options,
      headers: { authorization: `Bearer ${sessionStorage.getItem(KEY)}`, ...(options.headers ?? {}) },
    });
  } catch {
    showBanner('Connection to the evop API lost; retrying when you act again.', 'error');
    throw new Error('connection lost');
  }
  if (response.status === 401) throw new Unauthorized('the API key was refused');
  const body = (response.headers.get('content-type') ?? '').includes('json')
    ? await response.json()
    : response;
  if (!response.ok) throw new Error(body.detail ?? `HTTP ${response.status}`);
  return body;
}

/**
 * Server-sent events over fetch (EventSource cannot send an Authorization header). Reconnects with backoff and
 * says so in the banner while the connection is down; stops when the stream ends or `signal` aborts.
 */
async function streamEvents(path, onEvent, signal) {
  for (let attempt = 0; !signal.aborted; attempt++) {
    try {
      const response = await fetch(path, {
        headers: { authorization: `Bearer ${sessionStorage.getItem(KEY)}` },
        signal,
      });
      if (!response.ok || !response.body) throw new Error(`HTTP ${response.status}`);
      hideBanner();
      attempt = 0;
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        buffer += value;
        let end = buffer.indexOf('\n\n');
        while (end >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          end = buffer.indexOf('\n\n');
          const fields = {};
          for (const line of block.split('\n')) {
            const colon = line.indexOf(':');
            if (colon > 0) fields[line.slice(0, colon)] = line.slice(colon + 1).trimStart();
          }
          if (fields.data) onEvent(fields.event ?? 'message', JSON.parse(fields.data));
        }
      }
    } catch (err) {
      if (signal.aborted) return;
      showBanner(`Connection to the live updates lost (${err.message}); reconnecting…`, 'error');
      await new Promise((r) => setTimeout(r, Math.min(10_000, 500 * 2 ** attempt)));
    }
  }
}

function signIn(message = '') {
  signOut.hidden = true;
  view.innerHTML = html`<h1>Sign in</h1>
    <form class="card" id="sign-in">
      <p>Paste an API key (<code>evop admin create-key --tenant NAME</code>). It is kept in this tab only.</p>
      <label>API key <input name="key" type="password" size="50" autocomplete="off" required></label>
      <button type="submit">Sign in</button>
      ${message ? raw(html`<div class="error-box">${message}</div>`) : ''}
    </form>`;
  view.querySelector('form').addEventListener('submit', async (e) => {
    e.preventDefault();
    sessionStorage.setItem(KEY, new FormData(e.target).get('key').trim());
    try {
      await api('/v1/jobs?limit=1');
      route();
    } catch (err) {
      sessionStorage.removeItem(KEY);
      signIn(err instanceof Unauthorized ? 'That API key was refused.' : err.message);
    }
  });
}

const statusBadge = (s) => raw(html`<span class="status ${s}">${s}</span>`);

async function jobsPage() {
  const [{ jobs }, { models }, { datasets }] = await Promise.all([
    api('/v1/jobs?limit=100'),
    api('/v1/models'),
    api('/v1/datasets'),
  ]);
  const rows = jobs.map(
    (j) => html`<tr data-job="${j.id}">
      <td><a href="#/jobs/${j.id}">${j.id.slice(0, 8)}</a></td><td>${statusBadge(j.status)}</td><td>${j.stage ?? '-'}</td>
      <td><progress max="1" value="${j.progress}"></progress> ${Math.round(100 * j.progress)} %</td>
      <td class="num">${ppl(j.best?.fitness)}</td><td>${age(j.createdAt)}</td></tr>`,
  );
  const options = (list) => list.map((x) => html`<option value="${x.id}">${x.name}</option>`).join('');
  view.innerHTML = html`<h1>Jobs</h1>
    ${raw(
      jobs.length === 0
        ? '<p class="empty">No jobs yet. Submit one below, or with POST /v1/jobs.</p>'
        : html`<table id="jobs"><tr><th>job</th><th>status</th><th>stage</th><th>progress</th>
            <th>best (calibration ppl)</th><th>age</th></tr>${raw(rows.join(''))}</table>`,
    )}
    <h2>Submit a job</h2>
    ${raw(
      models.length === 0 || datasets.length === 0
        ? '<p class="empty">Upload a model and a dataset first (POST /v1/models, POST /v1/datasets).</p>'
        : html`<form class="card" id="submit">
            <label>Model <select name="modelId">${raw(options(models))}</select></label>
            <label>Dataset <select name="datasetId">${raw(options(datasets))}</select></label>
            <label title="never calibrated on: held-out perplexity on each, out of domain">Also evaluate on
              <select name="evalDatasetIds" multiple size="2">${raw(options(datasets))}</select></label>
            <label>Units to prune <input name="units" type="number" min="1" value="2" style="width:5em"></label>
            <label title="More unit counts, comma-separated: each is searched too, and the result plots quality against speed">
              Front <input name="front" placeholder="e.g. 1,3,4" style="width:7em"></label>
            <label>Granularity <select name="granularity"><option>layer</option><option>sublayer</option></select></label>
            <label>Budget <input name="budget" type="number" min="1" value="200" style="width:6em"></label>
            <label>Calibration windows <input name="calibration" type="number" min="1" value="32" style="width:5em"></label>
            <label>Held-out windows <input name="heldOut" type="number" min="1" value="64" style="width:5em"></label>
            <label>Sequence length <input name="seqLen" type="number" min="2" value="256" style="width:6em"></label>
            <label>Seed <input name="seed" type="number" min="0" value="0" style="width:5em"></label>
            <label><input name="baselines" type="checkbox"> peer methods too</label>
            <button type="submit">Submit</button><div id="submit-error"></div></form>`,
    )}`;
  view.querySelector('#submit')?.addEventListener('submit', async (e) => {
    e.preventDefault();
    const f = new FormData(e.target);
    const n = (k) => Number(f.get(k));
    const body = {
      modelId: f.get('modelId'),
      datasetId: f.get('datasetId'),
      evalDatasetIds: f.getAll('evalDatasetIds'),
      spec: {
        target: { units: n('units') },
        front: String(f.get('front') ?? '')
          .split(',')
          .filter((t) => t.trim() !== '')
          .map((t) => ({ units: Number(t) })),
        granularity: f.get('granularity'),
        budget: n('budget'),
        calibration: n('calibration'),
        heldOut: n('heldOut'),
        seqLen: n('seqLen'),
        seed: n('seed'),
        baselines: f.get('baselines') === 'on',
      },
    };
    try {
      const job = await api('/v1/jobs', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      location.hash = `#/jobs/${job.id}`;
    } catch (err) {
      view.querySelector('#submit-error').innerHTML = html`<div class="error-box">${err.message}</div>`;
    }
  });
  // The list refreshes while jobs run.
  if (jobs.some((j) => !TERMINAL.has(j.status))) {
    const timer = setTimeout(() => route(), 3000);
    return () => clearTimeout(timer);
  }
}

async function download(path, name) {
  const response = await api(path);
  const url = URL.createObjectURL(await response.blob());
  const a = Object.assign(document.createElement('a'), { href: url, download: name });
  a.click();
  URL.revokeObjectURL(url);
}

/** A data set's column heading, as report.html and `evop prune` write it. */
const datasetHeading = (d) => `${d.name} ppl (${d.domain === 'in' ? 'in' : 'out of'} domain)`;
const taskText = (s) => (s ? `${(100 * s.acc).toFixed(1)} ± ${(100 * s.accStderr).toFixed(1)}` : '-');

function resultTable(job) {
  // speedup: in words, with its interval ('inconclusive' when it spans 1), as the API words it.
  const { table, speedup, datasets = [], pruned, prunedModules = [] } = job.result;
  const tasks = job.spec.tasks ?? [];
  const rows = table.map(
    (r, i) => html`<tr><td>${r.method}</td><td class="num">${r.perplexity.toFixed(3)}</td>
      ${raw(datasets.map((_, k) => html`<td class="num">${r.datasets?.[k] == null ? '-' : r.datasets[k].toFixed(3)}</td>`).join(''))}
      <td class="num">${(r.params / 1e6).toFixed(3)}M</td><td class="num">${r.evaluations}</td>
      ${raw(tasks.map((t) => html`<td class="num">${taskText(r.tasks?.[t])}</td>`).join(''))}
      <td class="num">${i === 0 ? '1.00 / 1.00' : i === 1 ? `${speedup.prefill} / ${speedup.decode}` : '-'}</td>
      <td><code>${r.mask}</code></td></tr>`,
  );
  const heads = [...datasets.map(datasetHeading), ...tasks.map((t) => `${t} acc`)];
  const prunedRows = pruned.map(
    (id, i) => html`<tr><td>${id}</td><td><code>${prunedModules[i] ?? '-'}</code></td></tr>`,
  );
  return html`<h2>Result</h2>
    <p class="note">Held-out perplexity overall (what the methods are compared on) and per data set; zero-shot
      accuracy ± standard error in %.</p>
    <table id="result"><tr><th>method</th><th>held-out ppl</th>
      ${raw(
        heads
          .slice(0, datasets.length)
          .map((h) => html`<th class="dataset">${h}</th>`)
          .join(''),
      )}
      <th>params</th><th>evaluations</th>
      ${raw(
        heads
          .slice(datasets.length)
          .map((h) => html`<th class="task">${h}</th>`)
          .join(''),
      )}
      <th>speedup prefill / decode</th><th>mask</th></tr>${raw(rows.join(''))}</table>
    ${raw((job.result.failed ?? []).map((f) => html`<div class="error-box">Stage ${f.stage} failed: ${f.error}</div>`).join(''))}
    <h3>Pruned units</h3>
    <table id="pruned"><tr><th>unit</th><th>PyTorch module</th></tr>${raw(prunedRows.join(''))}</table>
    <p><button type="button" data-download="model">Download model.onnx</button>
      <button type="button" data-download="report">Download report.html</button></p>
    ${raw(frontSection(job))}`;
}

/** The quality–speed front, where the job has one: its chart (drawn by front-chart.js) and a row per point. */
function frontSection(job) {
  const { front = [], datasets = [] } = job.result;
  if (front.length === 0) return '';
  const rows = front.map(
    (p) => html`<tr class="${p.pareto ? 'pareto' : ''}"><td>${p.units}${p.target ? ' (target)' : ''}</td>
      <td class="num">${p.perplexity.toFixed(3)}</td>
      ${raw(datasets.map((_, k) => html`<td class="num">${p.datasets[k] == null ? '-' : p.datasets[k].toFixed(3)}</td>`).join(''))}
      <td class="num">${(p.params / 1e6).toFixed(3)}M</td><td class="num">${p.speedup.prefill} / ${p.speedup.decode}</td>
      <td>${p.pareto ? 'yes' : ''}</td>
      <td><button type="button" data-download-point="${p.units}">Download model.onnx</button></td></tr>`,
  );
  return html`<h2>Quality–speed front</h2>
    <p class="note">One search per target; held-out perplexity (left axis) and measured speed over the dense model
      (right axis) against units pruned. Large diamonds: Pareto-optimal points.</p>
    <div class="chart" id="front-chart"><canvas></canvas></div>
    <table id="front"><tr><th>units pruned</th><th>held-out ppl</th>
      ${raw(datasets.map((d) => html`<th class="dataset">${datasetHeading(d)}</th>`).join(''))}
      <th>params</th><th>speedup prefill / decode</th><th>pareto</th><th>model</th></tr>${raw(rows.join(''))}</table>`;
}

/** The heatmap's colour for a fraction of the population (0…1), as report.html draws it. */
const heatColour = (f) => `rgba(200,40,40,${f.toFixed(3)})`;

/**
 * The unit heatmap: a row per unit (with its module), a column per generation coloured by the fraction of the
 * population that prunes the unit, the generation axis under it.
 */
function heatmap(units, generations) {
  const cells = (u) =>
    generations
      .map((g) => {
        const f = g.population.length
          ? g.population.filter((m) => m[u] === '0').length / g.population.length
          : 0;
        const title = `${units[u].id}, generation ${g.generation}: ${Math.round(100 * f)} % of the population prune it`;
        return `<td style="background:${heatColour(f)}" title="${esc(title)}"></td>`;
      })
      .join('');
  const label = (unit) =>
    `${esc(unit.id)}${unit.module ? ` <span class="module">${esc(unit.module)}</span>` : ''}`;
  const ticks = generations
    .map(
      (g, i) =>
        `<td class="tick">${i === 0 || g.generation % 10 === 0 ? `<span>${g.generation}</span>` : ''}</td>`,
    )
    .join('');
  return (
    `<tr><th class="axis">unit ↓ / generation →</th><td colspan="${generations.length}"></td></tr>` +
    units.map((unit, u) => `<tr><th>${label(unit)}</th>${cells(u)}</tr>`).join('') +
    `<tr class="ticks"><th class="axis">generation</th>${ticks}</tr>`
  );
}

/** The heatmap's legend: the colour scale from 0 % to 100 % of the population. */
const heatLegend = () =>
  `<div class="legend" id="heat-legend"><span>fraction of the population that prunes the unit</span>
    <div class="scale" style="background:linear-gradient(to right,${heatColour(0)},${heatColour(1)})">${[
      0, 25, 50, 75, 100,
    ]
      .map((p) => `<span style="left:${p}%">${p} %</span>`)
      .join('')}</div></div>`;

async function jobPage(id) {
  const job = await api(`/v1/jobs/${id}`);
  const model = await api(`/v1/models/${job.modelId}`);
  const units = model.units[job.spec.granularity];
  const main = job.spec.strategy;
  document.title = `evop: ${model.name}`;
  view.innerHTML = html`<h1><span id="model-name">${model.name}</span>: job <code>${job.id}</code></h1>
    <p id="job-status"><span id="status">${statusBadge(job.status)}</span> <span id="stage">${job.stage ?? ''}</span>
      <progress id="progress" max="1" value="${job.progress}"></progress>
      ${job.status === 'running' || job.status === 'queued' ? raw('<button type="button" id="cancel">Cancel</button>') : ''}</p>
    <p>${model.name}: prune ${targetText(job.spec.target)}${(job.spec.front ?? []).length ? ` (front: ${job.spec.front.map(targetText).join(', ')})` : ''} at ${job.spec.granularity} granularity with ${main}
      (seed ${job.spec.seed}, budget ${job.spec.budget}).</p>
    ${job.status === 'failed' ? raw(html`<div class="error-box" id="job-error">This job failed: ${job.error}</div>`) : ''}
    ${job.status === 'cancelled' ? raw('<div class="error-box" id="job-cancelled">This job was cancelled.</div>') : ''}
    <h2>Search (${main}): fitness per generation</h2>
    <div class="chart" id="chart" data-points="0"><canvas></canvas></div>
    <h2>How often each unit is pruned in the population</h2><table class="heat" id="heat"></table>
    ${raw(heatLegend())}
    <div id="result-box">${job.result ? raw(resultTable(job)) : ''}</div>`;
  view
    .querySelector('#cancel')
    ?.addEventListener('click', () =>
      api(`/v1/jobs/${id}/cancel`, { method: 'POST' }).catch((err) => showBanner(err.message, 'error')),
    );
  view.addEventListener('click', (e) => {
    const which = e.target.dataset?.download;
    if (which === 'model') download(job.result.links.model, 'model.onnx');
    if (which === 'report') download(job.result.links.reportHtml, 'report.html');
    const point = job.result?.front.find((p) => String(p.units) === e.target.dataset?.downloadPoint);
    if (point) download(point.link, `model-${point.units}-units.onnx`);
  });
  const frontCanvas = view.querySelector('#front-chart canvas');
  const frontChart = frontCanvas ? drawFront(Chart, frontCanvas, job.result.frontChart) : undefined;
  const chart = new Chart(view.querySelector('canvas'), {
    type: 'line',
    data: {
      labels: [],
      datasets: [
        { label: 'best (NLL per token)', data: [], borderColor: '#c82828', pointRadius: 1 },
        { label: 'population mean', data: [], borderColor: '#2860c8', pointRadius: 1 },
      ],
    },
    options: {
      maintainAspectRatio: false,
      animation: false,
      scales: { x: { title: { display: true, text: 'generation' } } },
    },
  });
  const generations = [];
  const seen = new Set();
  const addGeneration = (strategy, record) => {
    if (strategy !== main || seen.has(record.generation)) return;
    seen.add(record.generation);
    generations.push(record);
    chart.data.labels.push(record.generation);
    chart.data.datasets[0].data.push(record.best?.fitness ?? null);
    chart.data.datasets[1].data.push(record.mean);
    chart.update();
    view.querySelector('#chart').dataset.points = String(generations.length);
    view.querySelector('#heat').innerHTML = heatmap(units, generations);
  };
  const controller = new AbortController();
  if (TERMINAL.has(job.status)) {
    const { generations: stored } = await api(`/v1/jobs/${id}/generations?strategy=${main}`);
    for (const g of stored) addGeneration(g.strategy, g);
  } else {
    streamEvents(
      `/v1/jobs/${id}/events`,
      (event, data) => {
        if (event === 'generation') addGeneration(data.strategy, data.record);
        if (event === 'status') {
          view.querySelector('#status').innerHTML = statusBadge(data.status).raw;
          view.querySelector('#stage').textContent = data.stage ?? '';
          view.querySelector('#progress').value = data.progress;
          if (TERMINAL.has(data.status)) route();
        }
      },
      controller.signal,
    );
  }
  return () => {
    controller.abort();
    chart.destroy();
    frontChart?.destroy();
    document.title = 'evop';
  };
}

async function modelsPage() {
  const { models } = await api('/v1/models');
  view.innerHTML = html`<h1>Models</h1>${raw(
    models.length === 0
      ? '<p class="empty">No models yet. Upload one with POST /v1/models.</p>'
      : html`<table id="models"><tr><th>name</th><th>layers</th><th>hidden</th><th>params</th><th>files</th><th>uploaded</th></tr>
        ${raw(
          models
            .map(
              (
                m,
              ) => html`<tr><td><a href="#/models/${m.id}">${m.name}</a></td><td class="num">${m.layers}</td>
                <td class="num">${m.hiddenSize}</td><td class="num">${(m.params / 1e6).toFixed(3)}M</td>
                <td>${m.files.map((f) => f.name).join(', ')}</td><td>${age(m.createdAt)} ago</td></tr>`,
            )
            .join(''),
        )}</table>`,
  )}`;
}

async function modelPage(id) {
  const m = await api(`/v1/models/${id}`);
  const units = m.units.sublayer.map(
    (u) =>
      html`<tr><td>${u.id}</td><td><code>${u.module ?? '-'}</code></td><td class="num">${u.params}</td></tr>`,
  );
  view.innerHTML = html`<h1>${m.name}</h1><p>${m.layers} decoder layers, hidden ${m.hiddenSize}, vocabulary
    ${m.vocabSize}, ${m.params.toLocaleString('en')} parameters; sha256 <code>${m.sha256}</code>.</p>
    <h2>Prunable units</h2><table id="units"><tr><th>unit</th><th>PyTorch module</th><th>parameters</th></tr>${raw(units.join(''))}</table>`;
}

async function datasetsPage() {
  const { datasets } = await api('/v1/datasets');
  view.innerHTML = html`<h1>Datasets</h1>${raw(
    datasets.length === 0
      ? '<p class="empty">No datasets yet. Upload one with POST /v1/datasets.</p>'
      : html`<table id="datasets"><tr><th>name</th><th>format</th><th>documents</th><th>bytes</th><th>uploaded</th></tr>
        ${raw(
          datasets
            .map(
              (d) => html`<tr><td>${d.name}</td><td>${d.format}</td><td class="num">${d.documents}</td>
                <td class="num">${d.bytes}</td><td>${age(d.createdAt)} ago</td></tr>`,
            )
            .join(''),
        )}</table>`,
  )}`;
}

async function workersPage() {
  const { workers } = await api('/v1/workers');
  view.innerHTML = html`<h1>Workers</h1>${raw(
    workers.length === 0
      ? '<p class="empty">No workers are connected. Start one: node --import tsx apps/worker/src/main.ts</p>'
      : html`<table id="workers"><tr><th>worker</th><th>device</th><th>provider</th><th>threads</th>
          <th>tasks</th><th>rows/s</th><th>busy</th><th>last heartbeat</th></tr>
        ${raw(
          workers
            .map(
              (
                w,
              ) => html`<tr><td>${w.id}</td><td>${w.device}</td><td>${w.provider}</td><td class="num">${w.threads}</td>
                <td>${
                  Object.entries(w.tasks)
                    .map(([q, n]) => `${q} ${n}`)
                    .join(', ') || '-'
                }</td>
                <td class="num">${w.rowsPerSecond.toFixed(1)}</td><td class="num">${Math.round(100 * w.busy)} %</td>
                <td>${age(w.heartbeatAt)} ago</td></tr>`,
            )
            .join(''),
        )}</table>`,
  )}`;
  const timer = setTimeout(() => route(), 5000);
  return () => clearTimeout(timer);
}

async function route() {
  cleanup();
  cleanup = () => {};
  if (!sessionStorage.getItem(KEY)) return signIn();
  signOut.hidden = false;
  const [, page, id] = location.hash.split('/');
  try {
    const pages = { jobs: id ? () => jobPage(id) : jobsPage, models: id ? () => modelPage(id) : modelsPage };
    const render = pages[page] ?? { datasets: datasetsPage, workers: workersPage }[page] ?? jobsPage;
    cleanup = (await render()) ?? (() => {});
  } catch (err) {
    if (err instanceof Unauthorized) {
      sessionStorage.removeItem(KEY);
      return signIn('Your API key was refused; sign in again.');
    }
    view.innerHTML = html`<div class="error-box">${err.message}</div>`;
  }
}

signOut.addEventListener('click', () => {
  sessionStorage.removeItem(KEY);
  route();
});
window.addEventListener('hashchange', route);
window.addEventListener('DOMContentLoaded', route);
