import type { Actor } from '../administration/users.js';
import type { NodeContext, ProgressListener } from '../context.js';
import type { AttachmentInput } from '../drafting/attachment-encryption.js';
import { compose } from '../drafting/draft.js';
import { nodeFail } from '../errors.js';
import { open } from '../reading/opening.js';

/**
 * Draft an answer to a request this node holds: `inReplyTo`, `from` and
 * `to` are filled in from the request (which counts as opened); the answer
 * then goes through drafting, approval and sending as any dossier does.
 */
export function draftReply(
  ctx: NodeContext,
  actor: Actor,
  requestId: string,
  input: {
    content: unknown;
    attachments?: readonly AttachmentInput[];
    onProgress?: ProgressListener;
  },
): Promise<string> {
  const row = ctx.store.requireDossier(requestId);
  if (row.kind !== 'request' || row.envelope_id === null)
    nodeFail('INVALID_STATE', `dossier ${requestId} is not a sent or received request`);
  const view = open(ctx, actor, requestId);
  const request = view.content;
  if (request.kind !== 'request')
    return nodeFail('INVALID_STATE', `dossier ${requestId} is not a request`);
  const other =
    row.direction === 'in' ? request.header.requestingAuthority : request.header.requestedAuthority;
  const own =
    row.direction === 'in' ? request.header.requestedAuthority : request.header.requestingAuthority;
  if (typeof input.content !== 'object' || input.content === null || Array.isArray(input.content))
    nodeFail('CONTENT_INVALID', 'the answer must be a JSON object');
  const content = {
    ...(input.content as Record<string, unknown>),
    kind: 'answer',
    inReplyTo: { envelopeId: row.envelope_id, caseReference: request.header.caseReference },
    from: own,
    to: other,
  };
  return compose(ctx, actor, {
    content,
    ...(input.attachments ? { attachments: input.attachments } : {}),
    ...(input.onProgress ? { onProgress: input.onProgress } : {}),
  });
}
