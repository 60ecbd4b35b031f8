// The seed article's design, finished: a Node.js `https` server that reads the AdmissionReview,
// adds the label, the status annotation and one sidecar, and answers with a base64 JSON Patch.
// Usage: node server.js PORT CERT KEY INJECTION_JSON
'use strict';
const fs = require('fs');
const https = require('https');

const [port, certFile, keyFile, injectionFile] = process.argv.slice(2);
const injection = JSON.parse(fs.readFileSync(injectionFile, 'utf8'));
const MAX_BODY = 3 * 1024 * 1024;

// JSON Pointer escaping of one path segment (RFC 6901).
const escape = (key) => key.replace(/~/g, '~0').replace(/\//g, '~1');

function patchFor(pod) {
  const meta = pod.metadata || {};
  const annotations = meta.annotations || {};
  if (annotations[injection.statusAnnotation] !== undefined) return null; // injected already
  const ops = [];
  if (meta.labels) {
    for (const [k, v] of Object.entries(injection.labels)) {
      ops.push({ op: 'add', path: '/metadata/labels/' + escape(k), value: v });
    }
  } else {
    ops.push({ op: 'add', path: '/metadata/labels', value: injection.labels });
  }
  if (meta.annotations) {
    ops.push({ op: 'add', path: '/metadata/annotations/' + escape(injection.statusAnnotation), value: injection.statusValue });
  } else {
    ops.push({ op: 'add', path: '/metadata/annotations', value: { [injection.statusAnnotation]: injection.statusValue } });
  }
  ops.push({ op: 'add', path: '/spec/containers/-', value: injection.container });
  return ops;
}

function review(body) {
  const request = body.request;
  if (body.apiVersion !== 'admission.k8s.io/v1' || body.kind !== 'AdmissionReview' || !request || typeof request.uid !== 'string') {
    throw new Error('not an admission.k8s.io/v1 AdmissionReview with a request uid');
  }
  const response = { uid: request.uid, allowed: true };
  const isPodCreate = request.kind && request.kind.kind === 'Pod' && request.operation === 'CREATE' && !request.subResource;
  if (isPodCreate && request.object && !injection.skipNamespaces.includes(request.namespace)) {
    const ops = patchFor(request.object);
    if (ops) {
      response.patchType = 'JSONPatch';
      response.patch = Buffer.from(JSON.stringify(ops)).toString('base64');
    }
  }
  return { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response };
}

function reply(res, status, contentType, text) {
  res.writeHead(status, { 'Content-Type': contentType, 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

const server = https.createServer({ cert: fs.readFileSync(certFile), key: fs.readFileSync(keyFile) }, (req, res) => {
  if (req.url === '/healthz') return reply(res, 200, 'text/plain', 'ok\n');
  if (req.method !== 'POST' || req.url !== '/mutate') return reply(res, 404, 'text/plain', 'not found\n');
  const chunks = [];
  let size = 0;
  req.on('data', (chunk) => {
    size += chunk.length;
    if (size > MAX_BODY) {
      reply(res, 413, 'text/plain', 'body too large\n');
      req.destroy();
      return;
    }
    chunks.push(chunk);
  });
  req.on('end', () => {
    if (size > MAX_BODY) return;
    let answer;
    try {
      answer = review(JSON.parse(Buffer.concat(chunks).toString('utf8')));
    } catch (e) {
      return reply(res, 400, 'text/plain', e.message + '\n');
    }
    reply(res, 200, 'application/json', JSON.stringify(answer));
  });
});
server.keepAliveTimeout = 60000;
server.headersTimeout = 10000;
server.listen(Number(port), '127.0.0.1', () => console.error(`node baseline listening on 127.0.0.1:${port}`));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
