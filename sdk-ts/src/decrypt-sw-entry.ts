// Entry of the standalone service-worker script `canvid-decrypt-sw.js` (scripts/build-sw.mjs
// bundles it): serve it from your app's origin and pass its URL to `playEncrypted`.
import { type WorkerScope, installDecryptWorker } from './decrypt-sw.js';

installDecryptWorker(self as unknown as WorkerScope);
