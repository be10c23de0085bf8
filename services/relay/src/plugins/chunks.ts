import { Readable } from 'node:stream';
import { isBlobId } from '@rogatory/storage';
import { validator } from '@rogatory/protocol';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import { jsonOf, requireSession } from '../context.js';
import { RelayError, fromStorageError } from '../errors.js';
import { requirePeerRelay } from './federation.js';

const MissingRequest = validator(
  Type.Object({ ids: Type.Array(Type.String({ pattern: '^[0-9a-f]{64}$' }), { maxItems: 10_000 }) }, { additionalProperties: false }),
  'missing request',
);

function chunkIdParam(request: FastifyRequest): string {
  const id = (request.params as { id?: unknown }).id;
  if (typeof id !== 'string' || !isBlobId(id)) throw new RelayError('CHUNK_ID_INVALID', 'chunk id must be 64 lowercase hex characters');
  return id;
}

/**
 * Chunk transfer, for nodes (/v1/chunks) and peer relays (/v1/relay/chunks):
 * "which do you lack", streamed upload verified against the id, download.
 */
export function chunkRoutes(app: FastifyInstance): void {
  const { relay } = app;

  const missing = async (request: FastifyRequest) => {
    const { ids } = MissingRequest.parse(jsonOf(request.body));
    const missing = await relay.blobs.missing(ids).catch((err: unknown) => Promise.reject(fromStorageError(err)));
    // A client skips uploading what we report as present: protect those chunks from
    // garbage collection for the upload grace period, as if just uploaded.
    const absent = new Set(missing);
    const now = relay.clock();
    // Concurrently: one backend round trip each, independent of one another (a
    // resumed upload may list thousands of present chunks).
    await Promise.all(
      [...new Set(ids)]
        .filter((id) => !absent.has(id))
        .map(async (id) => {
          await relay.backend.noteUpload(id, now);
          relay.presence.remember(id, now);
        }),
    );
    return { missing };
  };

  const put = async (request: FastifyRequest, reply: FastifyReply) => {
    const id = chunkIdParam(request);
    const declared = Number(request.headers['content-length']);
    if (Number.isFinite(declared) && declared > relay.limits.maxChunkBytes) throw new RelayError('LIMIT_EXCEEDED', 'chunk too large');
    const body = request.body;
    if (!(body instanceof Readable)) throw new RelayError('MALFORMED', 'chunk body must be application/octet-stream');
    let result;
    try {
      result = await relay.blobs.put(id, body, {
        maxSize: relay.limits.maxChunkBytes,
        ...(Number.isFinite(declared) ? { expectedSize: declared } : {}),
      });
    } catch (err) {
      throw fromStorageError(err);
    }
    const notedAt = relay.clock();
    await relay.backend.noteUpload(id, notedAt);
    relay.presence.remember(id, notedAt);
    relay.metrics.bytesIn.inc(result.created ? result.size : 0);
    return reply.code(result.created ? 201 : 200).send({ id, size: result.size });
  };

  app.post('/v1/chunks/missing', { bodyLimit: 1024 * 1024, preHandler: requireSession }, missing);
  app.put('/v1/chunks/:id', { preHandler: requireSession }, put);
  app.post('/v1/relay/chunks/missing', { bodyLimit: 1024 * 1024, preHandler: requirePeerRelay }, missing);
  app.put('/v1/relay/chunks/:id', { preHandler: requirePeerRelay }, put);

  app.get('/v1/chunks/:id', { preHandler: requireSession }, async (request, reply) => {
    const id = chunkIdParam(request);
    const address = request.session!.address;
    if (!(await relay.backend.chunkVisibleTo(id, address))) throw new RelayError('NOT_FOUND', 'no such chunk for this authority');
    let size: number;
    try {
      size = await relay.blobs.size(id);
    } catch (err) {
      throw fromStorageError(err);
    }
    relay.metrics.bytesOut.inc(size);
    return reply
      .header('content-type', 'application/octet-stream')
      .header('content-length', size)
      .send(Readable.from(relay.blobs.get(id)));
  });
}
