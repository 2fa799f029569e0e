#!/usr/bin/env node
// Creates a blob container on Azurite with a SharedKey-signed `PUT ?restype=container`
// (object_store has no call for it). Usage: node azurite_container.js PORT CONTAINER
// Uses the emulator's well-known development account. Exits 0 if created or already there.
'use strict';
const crypto = require('crypto');
const http = require('http');

const [port, container] = process.argv.slice(2);
if (!port || !container) {
  console.error('usage: azurite_container.js PORT CONTAINER');
  process.exit(2);
}
const account = 'devstoreaccount1';
const key = Buffer.from(
  'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==',
  'base64');
const version = '2021-08-06';
const date = new Date().toUTCString();
const path = `/${account}/${container}`;
const stringToSign = [
  'PUT', '', '', '', '', '', '', '', '', '', '', '',
  `x-ms-date:${date}\nx-ms-version:${version}`,
  `/${account}${path}\nrestype:container`,
].join('\n');
const signature = crypto.createHmac('sha256', key).update(stringToSign, 'utf8').digest('base64');
const req = http.request({
  host: '127.0.0.1',
  port: Number(port),
  method: 'PUT',
  path: `${path}?restype=container`,
  headers: {
    'x-ms-date': date,
    'x-ms-version': version,
    'Content-Length': '0',
    Authorization: `SharedKey ${account}:${signature}`,
  },
}, (res) => {
  let body = '';
  res.on('data', (c) => { body += c; });
  res.on('end', () => {
    if (res.statusCode === 201 || res.statusCode === 409) process.exit(0);
    console.error(`container creation failed: HTTP ${res.statusCode} ${body}`);
    process.exit(1);
  });
});
req.on('error', (e) => { console.error(`container creation failed: ${e.message}`); process.exit(1); });
req.end();
