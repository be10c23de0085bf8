import {
  contentTemplate,
  exampleAnswer,
  exampleRequest,
  type AnswerType,
  type RequestType,
} from '@rogatory/protocol';
import type { Actor } from '../administration/users.js';
import type { NodeContext } from '../context.js';
import { nodeFail } from '../errors.js';

export interface TemplateOptions {
  /** A new request of this type. */
  readonly type?: RequestType;
  /** The authority the request goes to (its name, country and first language come from the directory). */
  readonly to?: string;
  /** An answer to this request (local id), of `answerType`. */
  readonly answerTo?: string;
  readonly answerType?: AnswerType;
}

/** Name and country of a trusted authority or point of contact, as the manifest lists them. */
function party(
  ctx: NodeContext,
  address: string,
): { address: string; name: string; country: string } {
  const entry = ctx.trust.authority(address) ?? ctx.trust.poc(address);
  if (!entry)
    return nodeFail(
      'RECIPIENT_UNKNOWN',
      `${address} is not in a trusted manifest (rogatory directory lists who is)`,
    );
  return { address, name: entry.name, country: entry.country };
}

const HEADING = [
  'Rogatory dossier template. Every value below is a FICTITIOUS EXAMPLE: replace each one,',
  'delete the optional fields you do not need, and add those listed as "may also be given".',
  'Comments (//) may stay. Check it with `rogatory draft check <file>`, then',
];

/**
 * A commented template for a new request (`type`, to `to`) or an answer to a
 * stored request (`answerTo`), with this node as the sender and the parties,
 * case reference and reply reference filled in from what the node knows. No
 * dossier is opened (the request's metadata suffices), so nothing is audited.
 */
export function draftTemplate(ctx: NodeContext, actor: Actor, options: TemplateOptions): string {
  ctx.users.require(actor, 'dossier:draft');
  const self = party(ctx, ctx.address);
  if (options.answerTo !== undefined) {
    if (options.type !== undefined || options.to !== undefined)
      nodeFail(
        'INPUT_INVALID',
        'give either --type (a request) or --answer-to (an answer), not both',
      );
    const row = ctx.store.requireDossier(options.answerTo);
    const meta = ctx.store.meta(row);
    if (meta.kind !== 'request' || row.envelope_id === null)
      return nodeFail(
        'INVALID_STATE',
        `dossier ${options.answerTo} is not a sent or received request`,
      );
    const other = row.direction === 'in' ? meta.sender : (meta.recipients[0] as string);
    const example = exampleAnswer(options.answerType ?? 'acknowledgement');
    const content = {
      ...example,
      from: self,
      to: party(ctx, other),
      inReplyTo: { envelopeId: row.envelope_id, caseReference: meta.caseReference },
    };
    return contentTemplate(content, [
      ...HEADING,
      `draft it with \`rogatory reply ${options.answerTo} --content <file>\` (which sets inReplyTo, from and to).`,
    ]);
  }
  if (options.type === undefined)
    return nodeFail(
      'INPUT_INVALID',
      'give --type (mla, extradition, transfer, confiscation) or --answer-to',
    );
  const example = exampleRequest(options.type);
  const to = options.to === undefined ? undefined : party(ctx, options.to);
  const languages =
    options.to === undefined ? undefined : ctx.trust.authority(options.to)?.languages;
  const content = {
    ...example,
    header: {
      ...example.header,
      requestingAuthority: self,
      ...(to === undefined ? {} : { requestedAuthority: to }),
      ...(languages?.[0] === undefined ? {} : { language: languages[0] }),
    },
  };
  return contentTemplate(content, [
    ...HEADING,
    'draft it with `rogatory compose --content <file> --attach <files...>`.',
  ]);
}
