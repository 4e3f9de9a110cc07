export { TesseraServerApp, type ServerOptions } from './server.js';
export { TokenAuthority, parseTtl, type Claims, type Role } from './auth.js';
export { Store } from './db.js';
export { AdminModule, IdentityStore, hashPassword, verifyPassword, openApiDocument, type AdminOptions } from './admin/index.js';
export { Metrics } from './metrics.js';
export { createLogger, type Logger } from './log.js';
export { defineModel, buildPreset, weightsOf } from './models.js';
export { TaskRunner, pickUniform, type RunnerStatus, type RoundState } from './runner.js';
export * from './strategies/index.js';
