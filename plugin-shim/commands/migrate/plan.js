// heroku migrate:plan: generated from manifest.json; see lib/shim.js.
import { makeCommand } from '../../lib/shim.js'

export default makeCommand('migrate:plan')
