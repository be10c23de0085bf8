import { Readable } from 'node:stream';
import { BODY_LIMITS, MissingRequestSchema, messageCheck } from '@rogatory/relay-api';
import { isBlobId } from '@rogatory/storage';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { messageOf, requireSession } from '../context.js';
import { RelayError, fromStorageError } from '../errors.js';
import { peerUploader } from '../relay-core.js';
import { requirePeerRelay } from './federation.js';

const MissingRequest = messageCheck(MissingRequestSchema);

function chunkIdParam(request: FastifyRequest): string {
  const id = (request.params as { id?: unknown }).id;
  if (typeof id !== 'string' || !isBlobId(id))
    throw new RelayError('CHUNK_ID_INVALID', 'chunk id must be 64 lowercase hex characters');
  return id;
}

/** Who uploads: a node as its address, a peer relay as `relay:<id>`. */
function uploaderOf(request: FastifyRequest): string {
  if (request.peerRelay) return peerUploader(request.peerRelay);
  return request.session!.address;
}

/**
 * Chunk transfer, for nodes (/v1/chunks) and peer relays (/v1/relay/chunks):
 * "which do you lack", streamed upload verified against the id, download.
 *
 * A chunk belongs to whoever uploaded it (an upload record per uploader; the
 * bytes themselves are stored once): "which do you lack" and envelopes
 * answer only for the caller's own uploads, so a chunk id learnt elsewhere
 * neither tells whether the chunk is here nor gives access to it. Sending
 * the bytes (which the store checks against the id) makes any caller an
 * owner, within its storage quota.
 */
export function chunkRoutes(app: FastifyInstance): void {
  const { relay } = app;

  const missing = async (request: FastifyRequest) => {
    const { ids } = messageOf(request.body, MissingRequest, 'missing request');
    const now = relay.clock();
    // One backend call: the caller's own upload records among these, renewed, because
    // a client skips uploading what we report as present (protected from GC as if just uploaded).
    const owned = await relay.backend.ownedChunks(uploaderOf(request), ids, now);
    const absent = new Set(
      owned.length === 0
        ? []
        : await relay.blobs
            .missing(owned)
            .catch((err: unknown) => Promise.reject(fromStorageError(err))),
    );
    const present = new Set(owned.filter((id) => !absent.has(id)));
    for (const id of present) relay.presence.remember(id, now);
    return { missing: [...new Set(ids)].filter((id) => !present.has(id)) };
  };

  const put = async (request: FastifyRequest, reply: FastifyReply) => {
    const id = chunkIdParam(request);
    const declared = Number(request.headers['content-length']);
    if (Number.isFinite(declared) && declared > relay.limits.maxChunkBytes)
      throw new RelayError('LIMIT_EXCEEDED', 'chunk too large');
    const body = request.body;
    if (!(body instanceof Readable))
      throw new RelayError('MALFORMED', 'chunk body must be application/octet-stream');
    const uploader = uploaderOf(request);
    // Before a byte is stored. Uploads in flight at once are counted when they end, so one identity
    // can exceed its quota by at most the chunks it is sending concurrently.
    const usage = await relay.backend.uploadUsage(uploader, id);
    if (!usage.owned) {
      const size = Number.isFinite(declared) ? declared : relay.limits.maxChunkBytes;
      const peer = request.peerRelay !== null;
      const pendingQuota = peer
        ? relay.limits.pendingBytesPerPeer
        : relay.limits.pendingBytesPerNode;
      const heldQuota = peer ? relay.limits.heldBytesPerPeer : relay.limits.heldBytesPerNode;
      if (
        usage.pendingBytes + size > pendingQuota ||
        usage.pendingBytes + usage.referencedBytes + size > heldQuota
      ) {
        relay.metrics.quotaRefusals.inc({ uploader: peer ? 'peer' : 'node' });
        throw new RelayError('QUOTA_EXCEEDED', 'storage quota of this uploader reached');
      }
    }
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
    await relay.backend.noteUpload(id, notedAt, { identity: uploader, size: result.size });
    relay.presence.remember(id, notedAt);
    relay.metrics.bytesIn.inc(result.created ? result.size : 0);
    return reply.code(result.created ? 201 : 200).send({ id, size: result.size });
  };

  app.post(
    '/v1/chunks/missing',
    { bodyLimit: BODY_LIMITS.other, preHandler: requireSession },
    missing,
  );
  app.put('/v1/chunks/:id', { preHandler: requireSession }, put);
  app.post(
    '/v1/relay/chunks/missing',
    { bodyLimit: BODY_LIMITS.other, preHandler: requirePeerRelay },
    missing,
  );
  app.put('/v1/relay/chunks/:id', { preHandler: requirePeerRelay }, put);

  app.get('/v1/chunks/:id', { preHandler: requireSession }, async (request, reply) => {
    const id = chunkIdParam(request);
    const address = request.session!.address;
    if (!(await relay.backend.chunkVisibleTo(id, address)))
      throw new RelayError('NOT_FOUND', 'no such chunk for this authority');
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
