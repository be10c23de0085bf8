import { createServer, connect, type Server, type Socket } from 'node:net';

/**
 * What the link does to the traffic passing through it. Every field can be
 * changed while connections are open ({@link FlakyProxy.set}); the new
 * values apply to the next chunk of data.
 */
export interface LinkFaults {
  /** Delay added to every chunk, each direction, in ms (order is kept). */
  readonly latencyMs?: number;
  /** Random extra delay 0..jitterMs per chunk (still in order). */
  readonly jitterMs?: number;
  /** Bytes per second per direction and connection; 0 or absent = unlimited. */
  readonly bytesPerSecond?: number;
  /** Probability (0..1) that a new connection is reset at once instead of being connected upstream. */
  readonly refuseRate?: number;
  /** Reset a connection (TCP RST both ways) once this many bytes went through it, both directions counted. */
  readonly resetAfterBytes?: number;
  /** Stop forwarding a connection once this many bytes went through it, for `stallMs` (absent: until {@link FlakyProxy.release}). */
  readonly stallAfterBytes?: number;
  readonly stallMs?: number;
}

export interface FlakyProxyStats {
  readonly connections: number;
  readonly refused: number;
  readonly resets: number;
  readonly stalls: number;
  readonly bytesUp: number;
  readonly bytesDown: number;
}

interface Link {
  readonly client: Socket;
  readonly upstream: Socket;
  bytes: number;
  stalled: boolean;
  stallsDone: boolean;
  resumeAt: number;
  readonly waiters: (() => void)[];
}

/** A small deterministic PRNG (mulberry32): fault runs repeat from their seed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * A TCP proxy on loopback that degrades the link between two processes:
 * latency, jitter, a bandwidth cap, refused connections, resets after a
 * byte count and a stall mid-transfer. For fault tests between relays and
 * between a node and its relay; it never buffers more than one chunk per
 * direction and connection (it pauses the reading side while it waits), so
 * a stalled or slow link exerts back-pressure like a real one.
 */
export class FlakyProxy {
  private faults: LinkFaults;
  private readonly random: () => number;
  private readonly links = new Set<Link>();
  private counters = { connections: 0, refused: 0, resets: 0, stalls: 0, bytesUp: 0, bytesDown: 0 };

  private readonly server: Server;
  private listeningPort = 0;

  private constructor(
    private readonly target: { host: string; port: number },
    faults: LinkFaults,
    seed: number,
  ) {
    this.faults = faults;
    this.random = prng(seed);
    this.server = createServer({ pauseOnConnect: true, allowHalfOpen: true }, (client) =>
      this.accept(client),
    );
  }

  /** The loopback port the proxy listens on. */
  get port(): number {
    return this.listeningPort;
  }

  /** Listen on 127.0.0.1 (a free port unless given) and forward to `target`. */
  static async start(options: {
    target: { host: string; port: number };
    faults?: LinkFaults;
    port?: number;
    seed?: number;
  }): Promise<FlakyProxy> {
    const proxy = new FlakyProxy(options.target, options.faults ?? {}, options.seed ?? 1);
    await new Promise<void>((resolve, reject) => {
      proxy.server.once('error', reject);
      proxy.server.listen(options.port ?? 0, '127.0.0.1', () => resolve());
    });
    const address = proxy.server.address();
    if (address === null || typeof address === 'string') throw new Error('proxy has no TCP port');
    proxy.listeningPort = address.port;
    return proxy;
  }

  /** The URL of the proxy for an HTTP service behind it. */
  url(scheme = 'http'): string {
    return `${scheme}://127.0.0.1:${this.port}`;
  }

  /** Change the faults; open connections see them from their next chunk. */
  set(faults: LinkFaults): void {
    this.faults = faults;
  }

  stats(): FlakyProxyStats {
    return { ...this.counters };
  }

  /** Resume every stalled connection now. */
  release(): void {
    for (const link of this.links) this.resume(link);
  }

  /** Reset every open connection (as a cable pulled and plugged back in). */
  resetAll(): void {
    for (const link of [...this.links]) this.reset(link);
  }

  async close(): Promise<void> {
    this.resetAll();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(client: Socket): void {
    this.counters.connections++;
    client.on('error', () => undefined);
    const refuse = this.faults.refuseRate ?? 0;
    if (refuse > 0 && this.random() < refuse) {
      this.counters.refused++;
      client.resetAndDestroy();
      return;
    }
    // Half-open both ways: a side that finished sending still receives the answer.
    const upstream = connect({
      port: this.target.port,
      host: this.target.host,
      allowHalfOpen: true,
    });
    upstream.on('error', () => undefined);
    const link: Link = {
      client,
      upstream,
      bytes: 0,
      stalled: false,
      stallsDone: false,
      resumeAt: 0,
      waiters: [],
    };
    this.links.add(link);
    // A clean end travels through the pump (after the data before it); an error resets the other side.
    let open = 2;
    const closed = (hadError: boolean) => {
      if (hadError) this.reset(link);
      if (--open > 0) return;
      this.links.delete(link);
      this.resume(link);
    };
    client.once('close', closed);
    upstream.once('close', closed);
    upstream.once('connect', () => {
      this.pump(link, client, upstream, 'bytesUp');
      this.pump(link, upstream, client, 'bytesDown');
      client.resume();
    });
  }

  /** Forward `from` to `to` chunk by chunk, in order, applying the faults to each. */
  private pump(link: Link, from: Socket, to: Socket, counter: 'bytesUp' | 'bytesDown'): void {
    let chain = Promise.resolve();
    from.on('data', (chunk: Buffer) => {
      from.pause();
      chain = chain
        .then(() => this.forward(link, chunk, to, counter))
        .then(
          () => {
            if (this.links.has(link)) from.resume();
          },
          () => this.reset(link),
        );
    });
    // The end of `from` reaches `to` after the data before it; so does a close without an end (a destroy).
    let ended = false;
    const finish = () => {
      if (ended) return;
      ended = true;
      void chain.then(() => to.end());
    };
    from.once('end', finish);
    from.once('close', finish);
  }

  private async forward(
    link: Link,
    chunk: Buffer,
    to: Socket,
    counter: 'bytesUp' | 'bytesDown',
  ): Promise<void> {
    const f = this.faults;
    const delay = (f.latencyMs ?? 0) + (f.jitterMs ? this.random() * f.jitterMs : 0);
    if (delay > 0) await sleep(delay);
    if (f.bytesPerSecond && f.bytesPerSecond > 0)
      await sleep((chunk.length / f.bytesPerSecond) * 1000);
    let offset = 0;
    while (offset < chunk.length) {
      if (!this.links.has(link)) return;
      if (link.stalled) await new Promise<void>((r) => link.waiters.push(r));
      if (!this.links.has(link)) return;
      // Cut the chunk at the next fault threshold so a reset or stall happens at its exact byte.
      const thresholds = [f.resetAfterBytes, link.stallsDone ? undefined : f.stallAfterBytes]
        .filter((t): t is number => t !== undefined && t > link.bytes)
        .map((t) => t - link.bytes);
      const take = Math.min(chunk.length - offset, ...thresholds);
      const part = chunk.subarray(offset, offset + take);
      offset += take;
      link.bytes += part.length;
      this.counters[counter] += part.length;
      if (!to.write(part)) await new Promise<void>((r) => to.once('drain', () => r()));
      if (f.resetAfterBytes !== undefined && link.bytes >= f.resetAfterBytes) {
        this.reset(link);
        return;
      }
      if (!link.stallsDone && f.stallAfterBytes !== undefined && link.bytes >= f.stallAfterBytes) {
        link.stallsDone = true;
        link.stalled = true;
        this.counters.stalls++;
        if (f.stallMs !== undefined) setTimeout(() => this.resume(link), f.stallMs).unref();
      }
    }
  }

  private resume(link: Link): void {
    link.stalled = false;
    for (const w of link.waiters.splice(0)) w();
  }

  private reset(link: Link): void {
    if (!this.links.delete(link)) return;
    this.counters.resets++;
    link.client.resetAndDestroy();
    link.upstream.resetAndDestroy();
    this.resume(link);
  }
}
