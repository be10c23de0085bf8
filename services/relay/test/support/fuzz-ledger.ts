import {
  decodeEnvelope,
  verifyEvidence,
  type Envelope,
  type Evidence,
  type TrustStore,
} from '@rogatory/protocol';
import { RELAY_ERRORS, statusOf, type RelayErrorCode } from '@rogatory/relay-api';
import type { ProbeOutcome } from './http-probe.js';

export interface Expectation {
  /** The code (or one of the codes) the input must get, when it leaves only one right answer. */
  readonly code?: RelayErrorCode | readonly RelayErrorCode[];
  /**
   * A node submission: the bytes sent and the session's address. When the
   * bytes are an envelope of that sender the relay could parse, the answer
   * must carry a signed SubmissionRejection with the same reason code.
   */
  readonly submission?: { readonly bytes: Uint8Array; readonly session: string };
  /** A peer hand-over the relay must refuse with one signed RelayRejection per recipient. */
  readonly peerRejection?: { readonly envelope: Envelope; readonly recipients: readonly string[] };
  /** HEAD answers have no body to check. */
  readonly noBody?: boolean;
}

export interface ErrorBody {
  readonly error: { readonly code: string; readonly message?: unknown };
  readonly evidence?: unknown;
  readonly evidences?: unknown;
}

const STABLE_CODES = new Set(Object.keys(RELAY_ERRORS));

function describeOutcome(outcome: ProbeOutcome): string {
  if (outcome.kind === 'timeout') return 'no answer within the time limit (hang)';
  if (outcome.kind === 'failed') return `connection failed without an answer (${outcome.error})`;
  const text = outcome.response.body.toString('utf8').slice(0, 160);
  return `status ${String(outcome.response.status)} ${JSON.stringify(text)}`;
}

/**
 * Every malformed input the fuzz sends goes through `reject()`: the answer
 * must be a 4xx with a stable error code in the relay's catalogue, and
 * specific inputs must get specific codes and signed rejection evidences.
 * Violations are collected (with the input's label) rather than thrown, so
 * one run reports every kind of failure at once.
 */
export class FuzzLedger {
  private readonly perKind = new Map<string, number>();
  private readonly perCode = new Map<string, number>();
  readonly violations: string[] = [];

  constructor(
    private readonly options: {
      readonly trust: TrustStore;
      readonly relayId: string;
      readonly maxEnvelopeBytes: number;
      readonly seed: string;
    },
  ) {}

  /** Count an input of `kind` (also for inputs checked by other means than `reject`). */
  count(kind: string, n = 1): void {
    this.perKind.set(kind, (this.perKind.get(kind) ?? 0) + n);
  }

  violation(kind: string, label: string, message: string): void {
    if (this.violations.length < 200)
      this.violations.push(`[${kind}] ${label}: ${message} (seed ${this.options.seed})`);
  }

  /** Check the answer to an input that must be refused; returns the parsed error body when there is one. */
  reject(
    kind: string,
    label: string,
    outcome: ProbeOutcome,
    expect: Expectation = {},
  ): ErrorBody | undefined {
    this.count(kind);
    if (outcome.kind !== 'response') {
      this.violation(kind, label, describeOutcome(outcome));
      return undefined;
    }
    const { status, headers, body } = outcome.response;
    if (status < 400 || status > 499) {
      this.violation(kind, label, `expected a 4xx, got ${describeOutcome(outcome)}`);
      return undefined;
    }
    if (expect.noBody) {
      this.perCode.set(
        `(HEAD ${String(status)})`,
        (this.perCode.get(`(HEAD ${String(status)})`) ?? 0) + 1,
      );
      return undefined;
    }
    const type = headers['content-type'];
    if (typeof type !== 'string' || !type.startsWith('application/json')) {
      this.violation(
        kind,
        label,
        `error answer is not JSON (content-type ${String(type)}): ${describeOutcome(outcome)}`,
      );
      return undefined;
    }
    let parsed: ErrorBody;
    try {
      parsed = JSON.parse(body.toString('utf8')) as ErrorBody;
    } catch {
      this.violation(kind, label, `error body does not parse: ${describeOutcome(outcome)}`);
      return undefined;
    }
    const code = (parsed as { error?: { code?: unknown } } | null)?.error?.code;
    if (typeof code !== 'string' || !STABLE_CODES.has(code)) {
      this.violation(kind, label, `error body without a stable code: ${describeOutcome(outcome)}`);
      return undefined;
    }
    this.perCode.set(code, (this.perCode.get(code) ?? 0) + 1);
    if (statusOf(code as RelayErrorCode) !== status) {
      this.violation(
        kind,
        label,
        `code ${code} came with status ${String(status)}, the catalogue says ${String(statusOf(code as RelayErrorCode))}`,
      );
    }
    if (expect.code !== undefined) {
      const allowed: readonly string[] =
        typeof expect.code === 'string' ? [expect.code] : expect.code;
      if (!allowed.includes(code))
        this.violation(
          kind,
          label,
          `expected ${allowed.join(' or ')}, got ${describeOutcome(outcome)}`,
        );
    }
    if (expect.submission)
      this.checkSubmissionEvidence(kind, label, code, parsed, expect.submission);
    if (expect.peerRejection)
      this.checkPeerEvidences(kind, label, code, parsed, expect.peerRejection);
    return parsed;
  }

  private checkSubmissionEvidence(
    kind: string,
    label: string,
    code: string,
    body: ErrorBody,
    sent: { bytes: Uint8Array; session: string },
  ): void {
    let envelope: Envelope | undefined;
    if (sent.bytes.length <= this.options.maxEnvelopeBytes) {
      try {
        envelope = decodeEnvelope(sent.bytes);
      } catch {
        envelope = undefined;
      }
    }
    // No evidence for what cannot be bound to an envelope, for another sender's envelope
    // (an impostor must not obtain rejections about it), or for a rate limit.
    const owed =
      envelope !== undefined && envelope.body.sender === sent.session && code !== 'RATE_LIMITED';
    if (!owed || envelope === undefined) {
      if (body.evidence !== undefined)
        this.violation(
          kind,
          label,
          `an evidence came back for input that cannot carry one (${code})`,
        );
      return;
    }
    if (body.evidence === undefined) {
      this.violation(kind, label, `rejected with ${code} but without a SubmissionRejection`);
      return;
    }
    try {
      const evidence: Evidence = verifyEvidence(envelope, body.evidence, this.options.trust);
      const b = evidence.body;
      if (
        b.kind !== 'submission-rejection' ||
        b.issuer !== this.options.relayId ||
        b.reason?.code !== code
      ) {
        this.violation(
          kind,
          label,
          `evidence ${b.kind} by ${b.issuer} with reason ${String(b.reason?.code)} for code ${code}`,
        );
      }
    } catch (err) {
      this.violation(kind, label, `SubmissionRejection does not verify: ${(err as Error).message}`);
    }
  }

  private checkPeerEvidences(
    kind: string,
    label: string,
    code: string,
    body: ErrorBody,
    sent: { envelope: Envelope; recipients: readonly string[] },
  ): void {
    const list = body.evidences;
    if (!Array.isArray(list)) {
      this.violation(
        kind,
        label,
        `peer hand-over refused with ${code} but without RelayRejections`,
      );
      return;
    }
    const about = new Set<string>();
    for (const value of list) {
      try {
        const b = verifyEvidence(sent.envelope, value, this.options.trust).body;
        if (
          b.kind !== 'relay-rejection' ||
          b.issuer !== this.options.relayId ||
          b.reason?.code !== code ||
          b.recipient === null
        ) {
          this.violation(
            kind,
            label,
            `evidence ${b.kind} with reason ${String(b.reason?.code)} for code ${code}`,
          );
        } else {
          about.add(b.recipient);
        }
      } catch (err) {
        this.violation(kind, label, `RelayRejection does not verify: ${(err as Error).message}`);
      }
    }
    if (
      about.size !== new Set(sent.recipients).size ||
      sent.recipients.some((r) => !about.has(r))
    ) {
      this.violation(
        kind,
        label,
        `RelayRejections cover ${[...about].join(',')} instead of ${sent.recipients.join(',')}`,
      );
    }
  }

  total(): number {
    let n = 0;
    for (const v of this.perKind.values()) n += v;
    return n;
  }

  codesSeen(): ReadonlySet<string> {
    return new Set(this.perCode.keys());
  }

  summary(): string {
    const kinds = [...this.perKind]
      .sort((a, b) => a[0].localeCompare(b[0]))
      .map(([k, n]) => `${k}=${String(n)}`);
    const codes = [...this.perCode]
      .sort((a, b) => b[1] - a[1])
      .map(([c, n]) => `${c}=${String(n)}`);
    return `inputs ${String(this.total())}: ${kinds.join(' ')}\ncodes: ${codes.join(' ')}`;
  }
}
