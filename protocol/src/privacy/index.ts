/** Differential privacy for Tessera: RDP accounting, DP-FedAvg mechanism, and task DP settings. */
export * from './rdp.js';
export * from './mechanism.js';
export * from './config.js';
