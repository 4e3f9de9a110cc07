export { runDemoCommand, type DemoSummary } from './demo-command.js';
