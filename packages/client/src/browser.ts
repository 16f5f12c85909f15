// Entry of the browser bundle: the SDK and the WebRTC helper on `window.MessagingServer`.
import * as MessagingServer from './index.js';

(globalThis as unknown as { MessagingServer: typeof MessagingServer }).MessagingServer = MessagingServer;

export * from './index.js';
