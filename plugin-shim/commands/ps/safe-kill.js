// heroku ps:safe-kill: generated from manifest.json; see lib/shim.js.
import { makeCommand } from '../../lib/shim.js'

export default makeCommand('ps:safe-kill')
