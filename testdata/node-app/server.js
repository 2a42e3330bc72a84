// A Node API instrumented the way most Node teams do it: express with
// express-prom-bundle (on prom-client) and its defaults — histogram
// http_request_duration_seconds with labels method, path, status_code and
// buckets 0.003, 0.03, 0.1, 0.3, 1.5, 10. Gantry's canary-analysis tests run
// it beside the Go sample app (testdata/app) as a canary or stable version,
// with errors and latency injected on demand, scraped by a real Prometheus.
//
// Environment (the Go sample app's names and meanings):
//   LISTEN_ADDR    host:port to listen on (default 127.0.0.1:8080)
//   ERROR_RATE     share (0-1) of /api/* requests answered 500 (default 0)
//   EXTRA_LATENCY  delay added to /api/* requests: 1500ms, 2s or 1500 (ms)
//   LATENCY_RATE   share (0-1) of /api/* requests that get it (default 1)
//   BUCKETS        histogram buckets in seconds, comma-separated (default:
//                  express-prom-bundle's own)
'use strict';

const express = require('express');
const promBundle = require('express-prom-bundle');

function share(name, def) {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return def;
  const v = Number(raw);
  if (!Number.isFinite(v) || v < 0 || v > 1) {
    throw new Error(`${name}=${raw}: want a share between 0 and 1`);
  }
  return v;
}

function millis(name) {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return 0;
  const m = /^(\d+(?:\.\d+)?)(ms|s)?$/.exec(raw.trim());
  if (!m) throw new Error(`${name}=${raw}: want 1500ms, 2s or 1500 (milliseconds)`);
  return Number(m[1]) * (m[2] === 's' ? 1000 : 1);
}

function buckets() {
  const raw = process.env.BUCKETS;
  if (!raw) return undefined;
  const bs = raw.split(',').map(Number);
  if (bs.some((b, i) => !Number.isFinite(b) || b <= 0 || (i > 0 && b <= bs[i - 1]))) {
    throw new Error(`BUCKETS=${raw}: want positive, increasing upper bounds in seconds`);
  }
  return bs;
}

const errorRate = share('ERROR_RATE', 0);
const extraLatency = millis('EXTRA_LATENCY');
const latencyRate = share('LATENCY_RATE', 1);
const [host, port] = (process.env.LISTEN_ADDR || '127.0.0.1:8080').split(/:(?=\d+$)/);

const metrics = promBundle({
  includeMethod: true,
  includePath: true,
  includeStatusCode: true,
  buckets: buckets(),
  promClient: { collectDefaultMetrics: {} },
});
// Export the series a canary can produce at zero from the start, so that
// Prometheus' increase() sees the first errors (Gantry's README says why).
for (const code of ['200', '500']) {
  metrics.metrics.http_request_duration_seconds.zero({ method: 'GET', path: '/api/prompts', status_code: code });
}

const prompts = [
  { id: 'greeting', name: 'Greeting', description: 'Says hello', template: 'Hi {{name}}', vars: ['name'] },
  { id: 'summary', name: 'Summary', description: 'Summarises a text', template: 'Summarise: {{text}}', vars: ['text'] },
];

const app = express();
app.use(metrics);
app.get('/healthz', (req, res) => res.send('ok'));
app.get('/readyz', (req, res) => res.send('ready'));
app.use('/api', (req, res, next) => {
  const fail = Math.random() < errorRate;
  const delay = extraLatency > 0 && Math.random() < latencyRate ? extraLatency : 0;
  setTimeout(() => (fail ? res.status(500).json({ error: 'injected failure' }) : next()), delay);
});
app.get('/api/prompts', (req, res) => res.json(prompts));

const server = app.listen(Number(port), host, () => {
  console.log(`node sample app on ${host}:${port}`);
});
for (const sig of ['SIGTERM', 'SIGINT']) {
  process.on(sig, () => server.close(() => process.exit(0)));
}
