import { encryptAttachment } from '../attachment.js';
import type { AttachmentManifest } from '../attachment-manifest.js';
import {
  exampleAnswer,
  exampleRequest,
  type AnswerType,
  type DossierContent,
  type RequestType,
} from '../content/index.js';
import { sealDossier, type SealedResult, type TestRandomness } from '../dossier.js';
import type { TestWorld } from './world.js';

/** Example content of a request or answer, rewritten to name the given sender and recipient. */
export function exampleContentFor(
  type: RequestType | AnswerType,
  from: string,
  to: string,
  world: TestWorld,
): DossierContent {
  const party = (address: string) => {
    const network = address.split('@')[1]!;
    const { body } = world.networks[network]!.manifest;
    const entry = [...body.authorities, ...body.pocs].find((a) => a.address === address)!;
    return { address, name: entry.name, country: entry.country };
  };
  const isRequest = [
    'mla',
    'extradition',
    'transfer-of-sentenced-persons',
    'confiscation',
  ].includes(type);
  if (isRequest) {
    const content = exampleRequest(type as RequestType);
    return {
      ...content,
      header: {
        ...content.header,
        requestingAuthority: party(from),
        requestedAuthority: party(to),
      },
    };
  }
  const content = exampleAnswer(type as AnswerType);
  return { ...content, from: party(from), to: party(to) };
}

/** The encryption key of a test authority or point of contact (PoCs are written to like authorities). */
function recipientKey(world: TestWorld, address: string) {
  const poc = Object.values(world.networks).find((n) => n.poc.address === address)?.poc;
  return poc ? poc.encryptionRef : world.authority(address).encryptionRef;
}

/**
 * Seal a test dossier from `from` to `to` (authorities or points of contact;
 * the first recipient is the one the content addresses) with the world's keys.
 */
export function sealTestDossier(
  world: TestWorld,
  options: {
    from: string;
    to: readonly string[];
    type?: RequestType | AnswerType;
    content?: DossierContent;
    attachments?: readonly AttachmentManifest[];
    envelopeId?: string;
    createdAt?: number;
    expiresAt?: number;
    testRandomness?: TestRandomness;
  },
): SealedResult {
  const sender = world.authority(options.from);
  const createdAt = options.createdAt ?? world.now;
  return sealDossier({
    sender: {
      address: sender.address,
      identity: sender.identity,
      archiveKey: sender.encryptionRef,
    },
    recipients: options.to.map((address) => ({
      address,
      encryptionKey: recipientKey(world, address),
    })),
    content:
      options.content ??
      exampleContentFor(options.type ?? 'mla', options.from, options.to[0]!, world),
    attachments: options.attachments ?? [],
    createdAt,
    expiresAt: options.expiresAt ?? createdAt + 7 * 24 * 3600 * 1000,
    ...(options.envelopeId ? { envelopeId: options.envelopeId } : {}),
    ...(options.testRandomness ? { testRandomness: options.testRandomness } : {}),
  });
}

/** Encrypt an in-memory attachment (tests only): its manifest and ciphertext chunks. */
export async function encryptTestAttachment(
  bytes: Uint8Array,
  options: { name?: string; mediaType?: string; chunkSize?: number } = {},
): Promise<{ manifest: AttachmentManifest; chunks: { id: string; bytes: Uint8Array }[] }> {
  const run = encryptAttachment([bytes], {
    name: options.name ?? 'document.pdf',
    mediaType: options.mediaType ?? 'application/pdf',
    ...(options.chunkSize ? { chunkSize: options.chunkSize } : {}),
  });
  const chunks: { id: string; bytes: Uint8Array }[] = [];
  for await (const chunk of run.chunks) chunks.push({ id: chunk.id, bytes: chunk.bytes });
  return { manifest: run.manifest(), chunks };
}
