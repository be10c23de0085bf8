import { connect } from 'node:net';

type Reply = string | number | null | Reply[] | Error;

/** Parses one RESP2 reply from `text` at `pos`; undefined when incomplete. */
function parse(text: string, pos: number): { value: Reply; end: number } | undefined {
  const lineEnd = text.indexOf('\r\n', pos);
  if (lineEnd < 0) return undefined;
  const type = text[pos];
  const line = text.slice(pos + 1, lineEnd);
  const next = lineEnd + 2;
  switch (type) {
    case '+':
      return { value: line, end: next };
    case '-':
      return { value: new Error(line), end: next };
    case ':':
      return { value: Number(line), end: next };
    case '$': {
      const length = Number(line);
      if (length < 0) return { value: null, end: next };
      if (text.length < next + length + 2) return undefined;
      return { value: text.slice(next, next + length), end: next + length + 2 };
    }
    case '*': {
      const count = Number(line);
      const items: Reply[] = [];
      let at = next;
      for (let i = 0; i < count; i++) {
        const item = parse(text, at);
        if (item === undefined) return undefined;
        items.push(item.value);
        at = item.end;
      }
      return { value: items, end: at };
    }
    default:
      throw new Error('unexpected RESP type');
  }
}

/** Sends one command to redis-server over a fresh connection and returns its reply. */
export async function redisCommand(port: number, ...args: string[]): Promise<Reply> {
  const payload = `*${args.length}\r\n${args.map((arg) => `$${Buffer.byteLength(arg)}\r\n${arg}\r\n`).join('')}`;
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port });
    let text = '';
    socket.once('error', reject);
    socket.once('connect', () => socket.write(payload));
    socket.on('data', (data) => {
      text += data.toString('utf8');
      const reply = parse(text, 0);
      if (reply !== undefined) {
        socket.destroy();
        resolve(reply.value);
      }
    });
  });
}

/** True once nothing accepts connections on the port any more. */
export async function refusesConnections(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', () => {
      resolve(true);
    });
  });
}

/** Polls `check` until it holds or `timeoutMs` passes; returns the last result. */
export async function eventually(
  check: () => Promise<boolean>,
  timeoutMs = 15_000,
): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return true;
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
