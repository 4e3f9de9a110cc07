import type { Server, Socket } from 'socket.io';
import type { ClientToServerEvents, Ed25519Jwk, ServerToClientEvents } from '@tessera/protocol';
import type { Claims } from './auth.js';

export interface SocketData {
  claims: Claims;
  clientId?: string;
  taskId?: string;
}

export type TesseraServer = Server<ClientToServerEvents, ServerToClientEvents, Record<string, never>, SocketData>;
export type TesseraSocket = Socket<ClientToServerEvents, ServerToClientEvents, Record<string, never>, SocketData>;

/** A joined client: who it is, what it runs, and its live socket. */
export interface ConnectedClient {
  clientId: string;
  taskId: string;
  platform: 'node' | 'browser';
  backend: string;
  numTrainExamples: number;
  numTestExamples: number;
  /** Receipt-signing key registered at join (encrypted tasks). */
  receiptKey?: Ed25519Jwk;
  socket: TesseraSocket;
  joinedAt: number;
}

/** Connected clients by id; a client that reconnects replaces its older socket. */
export class ClientHub {
  private readonly byId = new Map<string, ConnectedClient>();

  add(c: ConnectedClient): ConnectedClient | undefined {
    const prev = this.byId.get(c.clientId);
    this.byId.set(c.clientId, c);
    return prev && prev.socket.id !== c.socket.id ? prev : undefined;
  }

  /** Removes the client if `socketId` is still its current socket. */
  remove(clientId: string, socketId: string): ConnectedClient | undefined {
    const c = this.byId.get(clientId);
    if (c && c.socket.id === socketId) {
      this.byId.delete(clientId);
      return c;
    }
    return undefined;
  }

  get(clientId: string): ConnectedClient | undefined {
    return this.byId.get(clientId);
  }

  forTask(taskId: string): ConnectedClient[] {
    return [...this.byId.values()].filter((c) => c.taskId === taskId && c.socket.connected);
  }

  all(): ConnectedClient[] {
    return [...this.byId.values()];
  }
}
