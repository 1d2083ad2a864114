// presenced client library (protocol 1.1). Entry point.
export { PresenceClient, connect, shared, backoffDelay } from './client.js';
export { View } from './view.js';
