export { teardown as default } from './s3-server.js';
