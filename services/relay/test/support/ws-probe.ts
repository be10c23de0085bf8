import { WebSocket } from 'ws';

export interface WsClosed {
  readonly code: number;
  readonly reason: string;
}

/**
 * A raw WebSocket to the relay's mailbox endpoint that records every frame
 * it receives, for sending garbage and checking what comes back. Every wait
 * is bounded.
 */
export class WsProbe {
  readonly frames: unknown[] = [];
  /** Frames that were not JSON (a violation of the mailbox protocol). */
  readonly unparsable: string[] = [];
  readonly closed: Promise<WsClosed>;
  readonly opened: Promise<boolean>;
  private closedWith: WsClosed | undefined;
  private readonly socket: WebSocket;
  private waiters: (() => void)[] = [];

  constructor(url: string) {
    this.socket = new WebSocket(url, { maxPayload: 64 * 1024 * 1024, handshakeTimeout: 10_000 });
    this.opened = new Promise((resolve) => {
      this.socket.once('open', () => {
        resolve(true);
      });
      this.socket.once('unexpected-response', () => {
        resolve(false);
      });
      this.socket.once('close', () => {
        resolve(false);
      });
      this.socket.once('error', () => {
        resolve(false);
      });
    });
    this.closed = new Promise((resolve) => {
      this.socket.on('close', (code, reason) => {
        this.closedWith = { code, reason: reason.toString('utf8') };
        resolve(this.closedWith);
        this.wake();
      });
    });
    this.socket.on('error', () => {
      // 'close' follows.
    });
    this.socket.on('message', (data, isBinary) => {
      const bytes = Buffer.isBuffer(data)
        ? data
        : Array.isArray(data)
          ? Buffer.concat(data)
          : Buffer.from(data);
      const text = isBinary ? '<binary>' : bytes.toString('utf8');
      try {
        this.frames.push(JSON.parse(text));
      } catch {
        this.unparsable.push(text.slice(0, 100));
      }
      this.wake();
    });
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }

  get isClosed(): boolean {
    return this.closedWith !== undefined;
  }

  send(data: string | Uint8Array, binary = false): void {
    if (this.socket.readyState === WebSocket.OPEN) this.socket.send(data, { binary });
  }

  /** Wait until `predicate` holds (checked on every frame and on close) or `ms` pass; returns whether it held. */
  async until(predicate: () => boolean, ms = 5000): Promise<boolean> {
    const end = Date.now() + ms;
    while (!predicate()) {
      const left = end - Date.now();
      if (left <= 0) return false;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(left, 250));
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    return true;
  }

  /** Close from our side and wait (bounded) for the close to complete. */
  async close(): Promise<WsClosed | undefined> {
    if (!this.isClosed) this.socket.close(1000);
    await this.until(() => this.isClosed, 5000);
    if (!this.isClosed) this.socket.terminate();
    return this.closedWith;
  }
}
