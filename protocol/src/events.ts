import type { ErrorBody } from './errors.js';
import type {
  DecryptAck,
  DecryptRequestWire,
  HePublication,
  EvaluateRequest,
  EvaluateResult,
  JoinAck,
  JoinRequest,
  RoundEnd,
  RoundStart,
  SimpleAck,
  SubmissionWire,
  TaskAssignment,
  TaskDone,
} from './messages.js';

/** Event names, one constant each, so a typo is a compile error on both sides. */
export const Events = {
  JOIN: 'join',
  TASK: 'task',
  ROUND_START: 'round:start',
  SUBMIT: 'submit',
  ROUND_END: 'round:end',
  EVALUATE: 'evaluate:start',
  EVALUATE_RESULT: 'evaluate:result',
  TASK_DONE: 'task:done',
  KEYHOLDER_PUBLISH: 'keyholder:publish',
  KEYHOLDER_DECRYPT: 'keyholder:decrypt',
  ERROR: 'tessera:error',
} as const;

/** What a client may send. Handlers validate every payload with its schema before use. */
export interface ClientToServerEvents {
  join: (req: JoinRequest, ack: (res: JoinAck) => void) => void;
  submit: (sub: SubmissionWire, ack: (res: SimpleAck) => void) => void;
  'evaluate:result': (res: EvaluateResult, ack: (res: SimpleAck) => void) => void;
  /** Key holder only: publishes its CKKS public key and parameters (signed). */
  'keyholder:publish': (pub: HePublication, ack: (res: SimpleAck) => void) => void;
}

/** What the server sends to a client. */
export interface ServerToClientEvents {
  task: (msg: TaskAssignment) => void;
  'round:start': (msg: RoundStart) => void;
  'round:end': (msg: RoundEnd) => void;
  'evaluate:start': (msg: EvaluateRequest) => void;
  'task:done': (msg: TaskDone) => void;
  'tessera:error': (err: ErrorBody) => void;
  /** To the key holder only: decrypt one round's aggregate (at most once per task and round). */
  'keyholder:decrypt': (req: DecryptRequestWire, ack: (res: DecryptAck) => void) => void;
}
