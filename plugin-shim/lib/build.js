// npm run build: release binaries into the plugin's bin/, where the commands look after
// $HEROKU_DEPLOY_SAFETY_BIN.
import { execFileSync } from 'node:child_process'
import { copyFileSync, mkdirSync } from 'node:fs'
import path from 'node:path'

import { manifest, pluginRoot } from './shim.js'

const repo = path.join(pluginRoot, '..')
execFileSync('cargo', ['build', '--release', '--locked', '--bins'], { cwd: repo, stdio: 'inherit' })
mkdirSync(path.join(pluginRoot, 'bin'), { recursive: true })
for (const name of new Set(manifest.commands.map(c => c.binary))) {
  copyFileSync(path.join(repo, 'target', 'release', name), path.join(pluginRoot, 'bin', name))
  console.log(`bin/${name}`)
}
