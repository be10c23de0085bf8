/**
 * Issue 14 item 6, second point: a relay's storage holds no plaintext of a
 * dossier. A dossier whose content (facts, a person's name) and attachment
 * (bytes and file name) carry a random marker is sealed, pushed through a
 * relay, fetched by one recipient and left waiting for the other; then
 * every file the relay's stores wrote is searched for the marker: raw,
 * base64 and base64url (each of the 3 alignments), hex lower and upper
 * case. Embedded: the SQLite file, its WAL and the chunk files. Redis +
 * S3: the RDB dump (after SAVE, uncompressed), the AOF files and s3rver's
 * directory. Positive controls: the scanner finds a marker planted in
 * every encoding and alignment, finds a control marker a leaky node
 * uploaded in clear in the chunk store, and finds the envelope id (a
 * routing header the relay must keep) in the database files.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sha256Hex } from '@rogatory/client';
import { utf8, type DossierContent } from '@rogatory/protocol';
import {
  encryptTestAttachment,
  exampleContentFor,
  sealTestDossier,
} from '@rogatory/protocol/testing';
import { startTestRelays, type TestNetworkOfRelays } from '@rogatory/relay/testing';
import { filesBelow, nodeClient } from '@rogatory/relay/testing/helpers';
import { afterAll, describe, expect, it } from 'vitest';
import { BACKENDS, redisCommand, type StartedBackend } from './support.js';

const SN = 'sn-moj@wacap';
const NG = 'ng-agf@wacap';
const GH = 'gh-ago@wacap';

/** The searched forms of `marker`: the label of each, and its bytes. */
function encodingsOf(marker: Uint8Array): Map<string, Buffer> {
  const m = Buffer.from(marker);
  const out = new Map<string, Buffer>([
    ['raw', m],
    ['hex', Buffer.from(m.toString('hex'))],
    ['HEX', Buffer.from(m.toString('hex').toUpperCase())],
  ]);
  // Base64 of the marker depends on where it starts in its 3-byte group: search each of the
  // three, without the first and last 4 characters (they mix in neighbouring bytes).
  for (const k of [0, 1, 2]) {
    const shifted = Buffer.concat([Buffer.alloc(k, 0x41), m]);
    out.set(`base64/${String(k)}`, Buffer.from(shifted.toString('base64').slice(4, -4)));
    out.set(`base64url/${String(k)}`, Buffer.from(shifted.toString('base64url').slice(4, -4)));
  }
  return out;
}

/** Every (file, encoding) where a form of `marker` occurs. */
async function scan(files: readonly string[], marker: Uint8Array): Promise<string[]> {
  const needles = encodingsOf(marker);
  const hits: string[] = [];
  for (const file of files) {
    let bytes: Buffer;
    try {
      bytes = await readFile(file);
    } catch {
      continue; // removed while listed (an SQLite -shm, a temp file)
    }
    for (const [label, needle] of needles)
      if (bytes.includes(needle)) hits.push(`${file}: ${label}`);
  }
  return hits;
}

describe('the storage scanner (positive control)', () => {
  it('finds a marker planted in every encoding and alignment, and nothing in noise', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'rogatory-scan-'));
    try {
      const marker = utf8(`MARKER-${randomBytes(16).toString('hex')}`);
      const noise = (): Buffer => randomBytes(1000 + Math.floor(Math.random() * 100));
      const planted: [string, Buffer][] = [
        ['raw', Buffer.from(marker)],
        ['hex', Buffer.from(Buffer.from(marker).toString('hex'))],
        ['HEX', Buffer.from(Buffer.from(marker).toString('hex').toUpperCase())],
      ];
      for (const k of [0, 1, 2]) {
        // The marker inside a longer text encoded whole, starting k bytes into a 3-byte group.
        const text = Buffer.concat([randomBytes(30 + k), Buffer.from(marker), randomBytes(5)]);
        planted.push([`base64/${String((30 + k) % 3)}`, Buffer.from(text.toString('base64'))]);
        planted.push([
          `base64url/${String((30 + k) % 3)}`,
          Buffer.from(text.toString('base64url')),
        ]);
      }
      for (const [label, bytes] of planted) {
        const file = join(dir, label.replace('/', '-'));
        await writeFile(file, Buffer.concat([noise(), bytes, noise()]));
        expect(await scan([file], marker), label).toContain(`${file}: ${label}`);
      }
      const clean = join(dir, 'noise');
      await writeFile(clean, Buffer.concat([noise(), noise()]));
      expect(await scan([clean], marker)).toEqual([]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

for (const choice of BACKENDS) {
  describe.runIf(choice.available)(`relay storage holds no plaintext, ${choice.name}`, () => {
    let backend: StartedBackend | undefined;
    let net: TestNetworkOfRelays | undefined;

    afterAll(async () => {
      await net?.stop();
      await backend?.stop();
    });

    it('a marker in content and attachment is found nowhere; the controls are found', async () => {
      const started = await choice.start();
      backend = started;
      const relays = await startTestRelays({ backend: started.kind, networks: ['wacap'] });
      net = relays;
      const { world } = relays;
      const relay = relays.relays['wacap']!;
      const sn = nodeClient(world, relay.url, SN);
      const ng = nodeClient(world, relay.url, NG);

      const marker = `MARKER-${randomBytes(16).toString('hex')}`;
      const control = `CONTROL-${randomBytes(16).toString('hex')}`;

      // The dossier: the marker in the facts, a person's name and the attachment (bytes and name).
      const base = exampleContentFor('mla', SN, NG, world);
      if (base.kind !== 'request') throw new Error('not a request');
      const content: DossierContent = {
        ...base,
        header: {
          ...base.header,
          summaryOfFacts: `${base.header.summaryOfFacts} ${marker}`,
          persons: (base.header.persons ?? []).map((p, i) =>
            i === 0 ? { ...p, name: `${p.name} ${marker}` } : p,
          ),
        },
      };
      const attachment = await encryptTestAttachment(
        utf8(`scanned request ${marker}\n`.repeat(300)),
        { name: `${marker}.pdf`, chunkSize: 1024 },
      );
      const sealed = sealTestDossier(world, {
        from: SN,
        to: [NG, GH],
        content,
        attachments: [attachment.manifest],
        createdAt: Date.now(),
      });
      await sn.putChunk(sealed.envelope.body.dossier.id, sealed.sealed, sealed.sealed.length);
      for (const c of attachment.chunks) await sn.putChunk(c.id, c.bytes, c.bytes.length);
      await sn.submit(sealed.envelope);

      // One recipient fetches everything and acks; the other's copy stays held.
      const items = await ng.readMailbox(0, 100);
      expect(items.map((i) => (i.kind === 'envelope' ? i.envelope.body.id : i.kind))).toEqual([
        sealed.envelope.body.id,
      ]);
      expect(await ng.getChunkBytes(sealed.envelope.body.dossier.id)).toEqual(sealed.sealed);
      for (const c of attachment.chunks) expect(await ng.getChunkBytes(c.id)).toEqual(c.bytes);
      await ng.ack(items.map((i) => i.seq));

      // A leaky node uploads the control marker in clear, in every form: the chunk store must show it.
      const leaky = Buffer.concat(
        [...encodingsOf(utf8(control)).values()].flatMap((b) => [b, Buffer.from('\n')]),
      );
      await sn.putChunk(sha256Hex(leaky), leaky, leaky.length);

      // The files the stores wrote.
      let databaseFiles: string[];
      let chunkFiles: string[];
      if (started.redis === undefined) {
        const all = await filesBelow(relays.dir);
        databaseFiles = all.filter((f) => /\.db(-wal|-shm)?$/.test(f));
        chunkFiles = all.filter((f) => f.includes('-chunks'));
        expect(databaseFiles.some((f) => f.endsWith('.db-wal'))).toBe(true);
      } else {
        expect(await redisCommand(started.redis.port, 'SAVE')).toBe('OK');
        databaseFiles = await filesBelow(started.redis.dir);
        chunkFiles = await filesBelow(started.s3!.dir);
        expect(databaseFiles.some((f) => f.endsWith('.rdb'))).toBe(true);
        expect(databaseFiles.some((f) => f.includes('.aof'))).toBe(true);
      }
      expect(chunkFiles.length).toBeGreaterThanOrEqual(attachment.chunks.length + 2);

      const everything = [...databaseFiles, ...chunkFiles, ...(await filesBelow(relays.dir))];
      expect(await scan(everything, utf8(marker))).toEqual([]);

      // Controls: the scanner reads these very files.
      const controlHits = await scan(chunkFiles, utf8(control));
      for (const label of encodingsOf(utf8(control)).keys())
        expect(
          controlHits.some((h) => h.endsWith(`: ${label}`)),
          label,
        ).toBe(true);
      const idHits = await scan(databaseFiles, utf8(sealed.envelope.body.id));
      if (started.redis === undefined) expect(idHits.some((h) => h.includes('.db'))).toBe(true);
      else {
        expect(idHits.some((h) => h.includes('.rdb'))).toBe(true);
        expect(idHits.some((h) => h.includes('.aof'))).toBe(true);
      }
    });
  });
}
