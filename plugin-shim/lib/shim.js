// One generic oclif command per entry of manifest.json (generated from the binaries' clap
// definitions by `cargo run -p cli-assets -- manifest`): flags declared once, in Rust.
// A command only resolves the app and the token the Heroku CLI way, then runs the binary.

import { spawn } from 'node:child_process'
import { accessSync, constants, readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

import { Command, flags as herokuFlags } from '@heroku-cli/command'
import { Args, Flags } from '@oclif/core'

const here = path.dirname(fileURLToPath(import.meta.url))
export const pluginRoot = path.join(here, '..')
export const manifest = JSON.parse(readFileSync(path.join(pluginRoot, 'manifest.json'), 'utf8'))

/** The environment variable naming the directory that holds the binaries. */
export const BIN_ENV = 'HEROKU_DEPLOY_SAFETY_BIN'

/** The manifest entry of a heroku command id. */
export function spec(id) {
  const s = manifest.commands.find(c => c.id === id)
  if (!s) throw new Error(`no command ${id} in manifest.json`)
  return s
}

function executable(file) {
  try {
    accessSync(file, constants.X_OK)
    return true
  } catch {
    return false
  }
}

/** The platforms with a prebuilt package, as `${process.platform}-${process.arch}`. */
export const PLATFORMS = ['linux-x64', 'linux-arm64', 'darwin-x64', 'darwin-arm64']

/** The npm package that carries the binaries for a platform (an optional dependency). */
export function platformPackage(platform = process.platform, arch = process.arch) {
  return `@heroku-deploy-safety/${platform}-${arch}`
}

/**
 * The bin/ directory of the installed platform package, resolved as Node resolves the plugin's
 * own dependencies (npm, pnpm and Yarn each put it somewhere else); null when it is not
 * installed (another platform, or installed without optional dependencies).
 */
export function platformBinDir(platform = process.platform, arch = process.arch, from = import.meta.url) {
  try {
    const manifest = createRequire(from).resolve(`${platformPackage(platform, arch)}/package.json`)
    return path.join(path.dirname(manifest), 'bin')
  } catch {
    return null
  }
}

/**
 * Where the binary is: the installed platform package first (what `heroku plugins:install`
 * brings), then $HEROKU_DEPLOY_SAFETY_BIN, the plugin's own bin/ (a build from source,
 * `scripts/install`) and PATH, for development. `null` when it is nowhere.
 */
export function findBinary(name, env = process.env, root = pluginRoot, platformBin = platformBinDir()) {
  const candidates = []
  if (platformBin) candidates.push(path.join(platformBin, name))
  if (env[BIN_ENV]) candidates.push(path.join(env[BIN_ENV], name))
  candidates.push(path.join(root, 'bin', name))
  for (const dir of (env.PATH || '').split(path.delimiter).filter(Boolean)) candidates.push(path.join(dir, name))
  return candidates.find(executable) ?? null
}

/** The one-line hint when a binary is missing: what is supported, and how to build it. */
export function installHint(name, platform = process.platform, arch = process.arch) {
  const here = `${platform}-${arch}`
  if (!PLATFORMS.includes(here)) {
    return `${name} has no prebuilt binary for ${here}: heroku-deploy-safety ships for Linux (x64, arm64; glibc) and macOS (x64, arm64). Build it from source (Rust: scripts/install in a checkout) and set ${BIN_ENV} to the directory that holds it`
  }
  return `${name} is not installed: reinstall the plugin with its optional dependencies (heroku plugins:install heroku-deploy-safety brings ${platformPackage(platform, arch)}), or run scripts/install from a checkout, or set ${BIN_ENV} to the directory that holds it`
}

/** oclif flags for a manifest entry; -a/-r are the Heroku CLI's own (HEROKU_APP, git remotes). */
export function oclifFlags(s) {
  const out = {}
  for (const f of s.flags) {
    if (f.name === 'app') {
      out.app = herokuFlags.app({ required: true })
      continue
    }
    if (f.name === 'remote') {
      out.remote = herokuFlags.remote()
      continue
    }
    const common = { description: f.description, ...(f.char ? { char: f.char } : {}) }
    if (f.type === 'boolean') {
      out[f.name] = Flags.boolean(common)
    } else {
      out[f.name] = Flags.string({
        ...common,
        multiple: f.multiple,
        ...(f.options ? { options: f.options } : {}),
        ...(f.value_name ? { helpValue: f.value_name } : {}),
        ...(f.default !== null && f.default !== undefined ? { default: f.default } : {}),
      })
    }
  }
  return out
}

/** oclif args for a manifest entry. */
export function oclifArgs(s) {
  const out = {}
  for (const a of s.args) out[argKey(a)] = Args.string({ description: a.description, required: a.required })
  return out
}

function argKey(a) {
  return a.name.toLowerCase().replace(/[^a-z0-9]+/g, '_')
}

/**
 * oclif options need a value; a flag whose value is optional in the binary (`--watch [DUR]`)
 * given bare gets an empty one here, and buildArgv passes it on bare, so the binary applies
 * its own default.
 */
export function fillOptionalValues(s, argv) {
  const optional = new Set(s.flags.filter(f => f.optional_value).map(f => `--${f.name}`))
  const out = []
  for (let i = 0; i < argv.length; i++) {
    out.push(argv[i])
    if (argv[i] === '--') {
      out.push(...argv.slice(i + 1))
      break
    }
    if (optional.has(argv[i]) && (i + 1 >= argv.length || argv[i + 1].startsWith('-'))) out.push('')
  }
  return out
}

/**
 * The binary's argv from parsed flags and args: the app always as `-a APP` (already resolved
 * by the Heroku CLI), `--remote` dropped, the rest as given, then `-- COMMAND…` when the
 * command takes one. The token is never here.
 */
export function buildArgv(s, flags, args, rest = []) {
  const argv = []
  if (s.subcommand) argv.push(s.subcommand)
  for (const a of s.args) {
    const v = args[argKey(a)]
    if (v !== undefined) argv.push(v)
  }
  if (flags.app) argv.push('-a', flags.app)
  for (const f of s.flags) {
    if (f.name === 'app' || f.name === 'remote') continue
    const v = flags[f.name]
    if (v === undefined || v === false) continue
    if (f.type === 'boolean') {
      argv.push(`--${f.name}`)
    } else if (Array.isArray(v)) {
      for (const item of v) argv.push(`--${f.name}`, item)
    } else if (v === '' && f.optional_value) {
      argv.push(`--${f.name}`)
    } else {
      if (f.default !== null && f.default !== undefined && v === f.default) continue
      argv.push(`--${f.name}`, v)
    }
  }
  if (s.trailing_command && rest.length > 0) argv.push('--', ...rest)
  return argv
}

/**
 * Set in the binary's environment: it runs through the plugin, so the commands it prints for
 * the user to run are worded `heroku …` (the binaries may not be on PATH at all).
 */
export const VIA_PLUGIN_ENV = 'HEROKU_DEPLOY_SAFETY_PLUGIN'

/** The child's environment: the CLI's token (from `heroku login` or HEROKU_API_KEY) and HEROKU_HOST. */
export function childEnv(token, env = process.env) {
  const out = { ...env }
  if (token) out.HEROKU_API_KEY = token
  out[VIA_PLUGIN_ENV] = '1'
  return out
}

/**
 * The binary's own exit status, and nothing else: oclif's `this.exit(N)` would print
 * `Error: EEXIT: N` after the tool's own line.
 */
function exitWith(status) {
  process.exitCode = status
}

/** Runs the binary with inherited stdio, forwarding signals, resolving to its exit status. */
export function runBinary(bin, argv, env) {
  return new Promise(resolve => {
    const child = spawn(bin, argv, { stdio: 'inherit', env })
    const forward = signal => () => {
      if (child.exitCode === null) child.kill(signal)
    }
    const onInt = forward('SIGINT')
    const onTerm = forward('SIGTERM')
    process.on('SIGINT', onInt)
    process.on('SIGTERM', onTerm)
    const done = status => {
      process.off('SIGINT', onInt)
      process.off('SIGTERM', onTerm)
      resolve(status)
    }
    child.on('error', err => {
      process.stderr.write(`${bin}: ${err.message}\n`)
      done(127)
    })
    child.on('exit', (code, signal) => done(code ?? 128 + (signal === 'SIGINT' ? 2 : signal === 'SIGTERM' ? 15 : 9)))
  })
}

/**
 * Splits a command's argv at `--` when it runs a COMMAND: the part before is its own (flags and
 * positionals, which oclif parses), the part after is COMMAND, passed on untouched — so
 * `migrate:release -a acme -- git push heroku main` never takes `git` for its VERSION.
 */
export function splitCommand(s, argv) {
  const at = argv.indexOf('--')
  if (!s.trailing_command || at < 0) return [argv, undefined]
  return [argv.slice(0, at), argv.slice(at + 1)]
}

/** Builds the oclif command class for a heroku command id. */
export function makeCommand(id) {
  const s = spec(id)
  return class extends Command {
    static id = id
    static summary = s.summary
    static description = s.description
    static examples = s.examples
    static flags = oclifFlags(s)
    static args = oclifArgs(s)
    static strict = !s.trailing_command

    async run() {
      const given = this.argv
      const [own, command] = splitCommand(s, given)
      this.argv = fillOptionalValues(s, own)
      const bin = findBinary(s.binary)
      let parsed
      try {
        parsed = await this.parse(this.constructor)
      } catch (err) {
        // Bad input is the binary's to say, its way: one line, exit 2, and under --json its
        // one document. Its flags are the ones this command declares (manifest.json).
        if (!bin) throw err
        const token = await this.credentials()
        const argv = s.subcommand ? [s.subcommand, ...given] : given
        return exitWith(await runBinary(bin, argv, childEnv(token)))
      }
      const { flags, args, argv } = parsed
      // COMMAND is what follows `--`; without one, a command that takes no positional
      // arguments treats everything left as COMMAND.
      const rest = command ?? (s.trailing_command && s.args.length === 0 ? argv : [])
      if (!bin) {
        process.stderr.write(`error: ${installHint(s.binary)}\n`)
        return exitWith(1)
      }
      const status = await runBinary(bin, buildArgv(s, flags, args, rest), childEnv(await this.credentials()))
      exitWith(status)
    }

    /** The CLI's own credentials: HEROKU_API_KEY, else what `heroku login` stored. */
    async credentials() {
      return typeof this.heroku.getAuth === 'function' ? await this.heroku.getAuth() : this.heroku.auth
    }
  }
}
