/** The console's socket.io connection to the server's `/admin` namespace (session cookie auth). */

export interface LiveSocket {
  on(event: string, fn: (...args: never[]) => void): LiveSocket;
  off(event: string, fn?: (...args: never[]) => void): LiveSocket;
  emit(event: string, ...args: unknown[]): LiveSocket;
  timeout(ms: number): { emitWithAck(event: string, ...args: unknown[]): Promise<unknown> };
  connected: boolean;
  disconnect(): void;
}

type IoFn = (uri: string, opts: Record<string, unknown>) => LiveSocket;

// socket.io's own browser build, served by this server (never a CDN).
const SOCKET_IO_URL = '/console/vendor/socket.io.esm.min.js';
let socket: Promise<LiveSocket> | undefined;

/** The shared `/admin` socket, connected on first use. */
export function liveSocket(): Promise<LiveSocket> {
  socket ??= (import(SOCKET_IO_URL) as Promise<{ io: IoFn }>).then(({ io }) => io('/admin', { transports: ['websocket'], withCredentials: true }));
  return socket;
}

export function closeLive(): void {
  void socket?.then((s) => s.disconnect());
  socket = undefined;
}
