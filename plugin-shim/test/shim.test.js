// The plugin's own logic: argv building, binary lookup, the token's route, optional values,
// and that every manifest entry becomes a command with the Heroku CLI's app flag.
import assert from 'node:assert/strict'
import { chmodSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { test } from 'node:test'
import { pathToFileURL } from 'node:url'

import { buildArgv, childEnv, fillOptionalValues, findBinary, installHint, makeCommand, manifest, PLATFORMS, platformBinDir, spec, splitCommand } from '../lib/shim.js'

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

test('binaries are found in the platform package, then $HEROKU_DEPLOY_SAFETY_BIN, the plugin bin/, PATH', () => {
  const root = mkdtempSync(path.join(tmpdir(), 'shim-'))
  const plugin = path.join(root, 'plugin')
  const onPath = fakeBin(path.join(root, 'path'), 'pg-blockers')
  assert.equal(findBinary('pg-blockers', { PATH: path.join(root, 'path') }, plugin, null), onPath)
  const inPlugin = fakeBin(path.join(plugin, 'bin'), 'pg-blockers')
  assert.equal(findBinary('pg-blockers', { PATH: path.join(root, 'path') }, plugin, null), inPlugin)
  const inEnv = fakeBin(path.join(root, 'env'), 'pg-blockers')
  const env = { PATH: path.join(root, 'path'), HEROKU_DEPLOY_SAFETY_BIN: path.join(root, 'env') }
  assert.equal(findBinary('pg-blockers', env, plugin, null), inEnv)
  // The installed platform package wins over all of them.
  const pkg = path.join(plugin, 'node_modules', '@heroku-deploy-safety', 'linux-x64')
  mkdirSync(pkg, { recursive: true })
  writeFileSync(path.join(pkg, 'package.json'), JSON.stringify({ name: '@heroku-deploy-safety/linux-x64', version: '0.1.0' }))
  const inPackage = fakeBin(path.join(pkg, 'bin'), 'pg-blockers')
  const bin = platformBinDir('linux', 'x64', pathToFileURL(path.join(plugin, 'lib', 'shim.js')).href)
  assert.equal(bin, path.join(pkg, 'bin'))
  assert.equal(findBinary('pg-blockers', env, plugin, bin), inPackage)
  assert.equal(platformBinDir('darwin', 'arm64', pathToFileURL(path.join(plugin, 'lib', 'shim.js')).href), null, 'not installed')
  assert.equal(findBinary('safe-ps-kill', { PATH: path.join(root, 'path') }, plugin, null), null)
  assert.match(installHint('safe-ps-kill', 'linux', 'x64'), /@heroku-deploy-safety\/linux-x64.*scripts\/install.*HEROKU_DEPLOY_SAFETY_BIN/)
})

test('a platform with no package says in one line what is supported and how to build from source', () => {
  for (const [platform, arch] of [['win32', 'x64'], ['linux', 'ia32'], ['freebsd', 'x64']]) {
    const hint = installHint('pg-blockers', platform, arch)
    assert.ok(!hint.includes('\n'), hint)
    assert.match(hint, new RegExp(`no prebuilt binary for ${platform}-${arch}`))
    assert.match(hint, /Linux \(x64, arm64; glibc\) and macOS \(x64, arm64\)/)
    assert.match(hint, /Build it from source \(Rust: scripts\/install in a checkout\)/)
  }
  assert.deepEqual(PLATFORMS, ['linux-x64', 'linux-arm64', 'darwin-x64', 'darwin-arm64'])
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
