// The plugin's own logic: argv building, binary lookup, the token's route, optional values,
// and that every manifest entry becomes a command with the Heroku CLI's app flag.
import assert from 'node:assert/strict'
import { chmodSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { test } from 'node:test'

import { buildArgv, childEnv, fillOptionalValues, findBinary, installHint, makeCommand, manifest, spec, splitCommand } from '../lib/shim.js'

test('flags become the binary argv; the app is -a, the remote is dropped', () => {
  const s = spec('ps:safe-kill')
  const argv = buildArgv(s, { app: 'acme', remote: 'production', all: true, confirm: 'acme', wait: '5s', json: false }, { dyno_type: 'release' })
  assert.deepEqual(argv, ['release', '-a', 'acme', '--all', '--confirm', 'acme', '--wait', '5s'])
})

test('defaults are left to the binary and repeated values repeat the flag', () => {
  const s = spec('pg:blockers')
  const argv = buildArgv(s, { app: 'acme', grace: '2s', cancel: ['12', '34'] }, {})
  assert.deepEqual(argv, ['-a', 'acme', '--cancel', '12', '--cancel', '34'])
})

test('subcommands and the trailing COMMAND are passed through', () => {
  assert.deepEqual(buildArgv(spec('migrate:check'), { app: 'acme', since: '10m' }, {}), ['check', '-a', 'acme', '--since', '10m'])
  assert.deepEqual(
    buildArgv(spec('migrate:follow'), { app: 'acme', restart: 'all', confirm: 'acme' }, { dyno: 'run.1001' }),
    ['follow', 'run.1001', '-a', 'acme', '--restart', 'all', '--confirm', 'acme'])
  const w = spec('maintenance:window')
  assert.deepEqual(buildArgv(w, { app: 'acme', confirm: 'acme' }, {}, ['migrate-restart', '-a', 'acme']), ['-a', 'acme', '--confirm', 'acme', '--', 'migrate-restart', '-a', 'acme'])
})

test('a command with a positional and -- COMMAND splits at --: VERSION is never taken from COMMAND', () => {
  const r = spec('migrate:release')
  assert.deepEqual(splitCommand(r, ['-a', 'acme', '--', 'git', 'push', 'heroku', 'main']), [['-a', 'acme'], ['git', 'push', 'heroku', 'main']])
  assert.deepEqual(splitCommand(r, ['v43', '-a', 'acme']), [['v43', '-a', 'acme'], undefined])
  assert.deepEqual(
    buildArgv(r, { app: 'acme', confirm: 'acme' }, {}, ['git', 'push', 'heroku', 'main']),
    ['release', '-a', 'acme', '--confirm', 'acme', '--', 'git', 'push', 'heroku', 'main'])
  assert.deepEqual(buildArgv(r, { app: 'acme' }, { version: 'v43' }, []), ['release', 'v43', '-a', 'acme'])
})

test('a bare --watch reaches the binary bare, so its own default applies', () => {
  const s = spec('pg:blockers')
  const argv = fillOptionalValues(s, ['-a', 'acme', '--watch', '--json'])
  assert.deepEqual(argv, ['-a', 'acme', '--watch', '', '--json'])
  assert.deepEqual(buildArgv(s, { app: 'acme', watch: '', json: true }, {}), ['-a', 'acme', '--watch', '--json'])
  assert.deepEqual(fillOptionalValues(s, ['--watch', '5s']), ['--watch', '5s'])
})

test('the token travels in the environment, never in argv', () => {
  const env = childEnv('tok-123', { PATH: '/bin', HEROKU_HOST: 'http://127.0.0.1:5000' })
  assert.equal(env.HEROKU_API_KEY, 'tok-123')
  assert.equal(env.HEROKU_HOST, 'http://127.0.0.1:5000')
  const argv = buildArgv(spec('ps:safe-kill'), { app: 'acme' }, {})
  assert.ok(!argv.join(' ').includes('tok-123'))
})

function fakeBin(dir, name) {
  mkdirSync(dir, { recursive: true })
  const file = path.join(dir, name)
  writeFileSync(file, '#!/bin/sh\n')
  chmodSync(file, 0o755)
  return file
}

test('binaries are found in $HEROKU_DEPLOY_SAFETY_BIN, then the plugin bin/, then PATH', () => {
  const root = mkdtempSync(path.join(tmpdir(), 'shim-'))
  const onPath = fakeBin(path.join(root, 'path'), 'pg-blockers')
  assert.equal(findBinary('pg-blockers', { PATH: path.join(root, 'path') }, path.join(root, 'plugin')), onPath)
  const inPlugin = fakeBin(path.join(root, 'plugin', 'bin'), 'pg-blockers')
  assert.equal(findBinary('pg-blockers', { PATH: path.join(root, 'path') }, path.join(root, 'plugin')), inPlugin)
  const inEnv = fakeBin(path.join(root, 'env'), 'pg-blockers')
  assert.equal(findBinary('pg-blockers', { PATH: path.join(root, 'path'), HEROKU_DEPLOY_SAFETY_BIN: path.join(root, 'env') }, path.join(root, 'plugin')), inEnv)
  assert.equal(findBinary('safe-ps-kill', { PATH: path.join(root, 'path') }, path.join(root, 'plugin')), null)
  assert.match(installHint('safe-ps-kill'), /scripts\/install.*HEROKU_DEPLOY_SAFETY_BIN/)
})

test('every manifest entry is a command with the Heroku CLI app flag, a description and its flags', () => {
  assert.equal(manifest.commands.length, 11)
  for (const s of manifest.commands) {
    const C = makeCommand(s.id)
    assert.equal(C.id, s.id)
    assert.ok(C.flags.app && C.flags.remote, s.id)
    assert.equal(C.flags.app.char, 'a')
    assert.ok(C.summary.length > 0, s.id)
    for (const f of s.flags) assert.ok(C.flags[f.name], `${s.id} --${f.name}`)
  }
  assert.equal(makeCommand('maintenance:window').strict, false)
  assert.equal(makeCommand('migrate:plan').strict, false, 'migrate:plan takes -- COMMAND')
  assert.ok(makeCommand('pg:blockers').examples.some(e => e.startsWith('heroku pg:blockers -a acme')))
})
