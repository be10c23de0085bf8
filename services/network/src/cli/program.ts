import { resolve } from 'node:path';
import { Command, CommanderError } from 'commander';
import { ready, type Manifest } from '@rogatory/protocol';
import { networkFail } from '../errors.js';
import { readJsonFile } from '../folder.js';
import {
  EMPTY_SIDE,
  chainReport,
  diffEditions,
  isEmptyDiff,
  renderDiff,
  sideOfDraft,
  sideOfEdition,
  verifyEditionValue,
  type DiffSide,
} from '../report.js';
import {
  REVOCATION_REASONS,
  addAuthority,
  addPeer,
  addPoc,
  addRelay,
  exportAnchor,
  initSecretariat,
  loadSecretariat,
  publishEdition,
  readMemberKeys,
  removeMember,
  revoke,
  type Secretariat,
} from '../secretariat.js';
import { addStatements, updateMember, type UpdateResult } from '../statements.js';
import { pushPublications } from '../push.js';
import {
  logStatus,
  queuedStatements,
  showLog,
  verifyLog,
  verifyPublicationFile,
} from '../log-report.js';
import { EXIT, emit, formatTime, passphrase, reportError, table, type CliIO } from './io.js';

export interface CliOptions {
  /** The clock (tests). */
  readonly clock?: () => number;
}

interface Globals {
  readonly dir: string;
  readonly json: boolean;
}

function globals(cmd: Command): Globals {
  const o = cmd.optsWithGlobals<{ dir?: string; json?: boolean }>();
  return { dir: resolve(o.dir ?? '.'), json: o.json === true };
}

const list = (value: string): string[] =>
  value
    .split(',')
    .map((v) => v.trim())
    .filter((v) => v !== '');

function parseTime(value: string, option: string): number {
  const ms = Date.parse(value);
  if (!/^\d{4}-\d{2}-\d{2}/.test(value) || Number.isNaN(ms))
    networkFail('INPUT_INVALID', `${option} must be an ISO 8601 date-time`);
  return ms;
}

function parseDays(value: string, option: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(n))
    networkFail('INPUT_INVALID', `${option} must be a whole number of days`);
  return n;
}

/** An edition number (1, v1), "draft", or the path of an edition file (verified under the root or an anchor). */
async function sideOf(s: Secretariat, arg: string, now: number): Promise<DiffSide> {
  if (arg === 'draft') return sideOfDraft(s.draft);
  const m = /^v?(\d+)$/.exec(arg);
  if (m) {
    const edition = s.editions[Number(m[1]) - 1];
    if (!edition)
      return networkFail(
        'MEMBER_NOT_FOUND',
        `no edition ${arg} (the folder has ${s.editions.length})`,
      );
    return sideOfEdition(edition);
  }
  const value = await readJsonFile(arg, 'the edition file');
  verifyEditionValue(s, value, arg, now);
  return sideOfEdition(value as Manifest);
}

function cosignerName(c: unknown): string {
  if (typeof c === 'string') return c;
  const name = (c as { name?: unknown } | null)?.name;
  return typeof name === 'string' ? name : JSON.stringify(c);
}

function renderUpdate(r: UpdateResult): string {
  return [
    `${r.role} ${r.address} updated in the draft: identity key ${r.key}`,
    ...(r.rotated
      ? [
          `rotated ${r.rotated.oldKid} -> ${r.rotated.newKid}${r.rotated.queued ? ' (rotation queued for the log)' : ''}`,
        ]
      : []),
    ...(r.added ? [`encryption key ${r.added} added (newest first)`] : []),
    ...(r.dropped.length > 0 ? [`retired: ${r.dropped.join(', ')}`] : []),
    ...(r.role === 'relay' ? [] : [`encryption keys: ${r.encryptionKeys.join(', ')}`]),
    'It takes effect with the next publish.',
  ].join('\n');
}

export function buildProgram(io: CliIO, options: CliOptions = {}): Command {
  const clock = options.clock ?? Date.now;
  const program = new Command('rogatory-network')
    .description(
      'Rogatory network secretariat: root key, members, anchors and signed manifest editions',
    )
    .option('-d, --dir <path>', 'secretariat folder (default: the current directory)')
    .option('--json', 'machine-readable output')
    .showHelpAfterError()
    .exitOverride()
    .configureOutput({ writeOut: (s) => io.out(s), writeErr: (s) => io.err(s) });

  program
    .command('init')
    .description(
      'create the network root key (sealed with a passphrase) and an empty draft; run it on an offline machine',
    )
    .requiredOption('--network <id>', 'network id, e.g. wacap')
    .option('--root-valid-days <days>', 'validity of the root key', '3650')
    .option(
      '--kdf <level>',
      'Argon2id work factors: moderate (default) or interactive (tests only)',
      'moderate',
    )
    .option(
      '--passphrase-file <file>',
      'read the passphrase from the first line of this file (else $ROGATORY_PASSPHRASE or a prompt)',
    )
    .action(
      async (
        opts: { network: string; rootValidDays: string; kdf: string; passphraseFile?: string },
        cmd: Command,
      ) => {
        const g = globals(cmd);
        if (opts.kdf !== 'moderate' && opts.kdf !== 'interactive')
          networkFail('INPUT_INVALID', '--kdf must be moderate or interactive');
        const secret = await passphrase(io, opts.passphraseFile, 'New root key passphrase: ');
        const anchor = await initSecretariat({
          dir: g.dir,
          network: opts.network,
          passphrase: secret,
          kdf: opts.kdf,
          rootValidDays: parseDays(opts.rootValidDays, '--root-valid-days'),
          clock,
        });
        emit(io, g.json, anchor, () =>
          [
            `secretariat of ${anchor.network} created in ${g.dir}`,
            `root key     ${anchor.root.kid} (valid until ${formatTime(anchor.root.notAfter)})`,
            `fingerprint  ${anchor.fingerprint}`,
            'Back up root-key.json (sealed) and keep the passphrase apart from it.',
          ].join('\n'),
        );
      },
    );

  const member = (c: Command) =>
    c
      .option(
        '--from <file>',
        'the output of `rogatory init --json` (identity and encryptionCertificate)',
      )
      .option('--identity <file>', 'the identity KeyRef (JSON) printed by `rogatory init`')
      .option(
        '--certificate <file>',
        'the encryption-key certificate (JSON) printed by `rogatory init`',
      )
      .requiredOption('--name <name>', 'name as listed, e.g. "Ministry of Justice of Senegal"')
      .requiredOption('--country <code>', 'ISO 3166-1 alpha-2 country code, e.g. SN');

  const authority = program.command('authority').description('authorities of the draft');
  member(
    authority
      .command('add')
      .description('admit an authority to the draft (address from its certificate)'),
  )
    .requiredOption(
      '--competences <types>',
      'comma-separated: mla, extradition, transfer-of-sentenced-persons, confiscation',
    )
    .requiredOption('--languages <tags>', 'comma-separated language tags, e.g. en,fr')
    .action(
      async (
        opts: {
          from?: string;
          identity?: string;
          certificate?: string;
          name: string;
          country: string;
          competences: string;
          languages: string;
        },
        cmd: Command,
      ) => {
        const g = globals(cmd);
        const entry = await addAuthority({
          dir: g.dir,
          keys: await readMemberKeys(opts),
          name: opts.name,
          country: opts.country,
          competences: list(opts.competences),
          languages: list(opts.languages),
        });
        emit(
          io,
          g.json,
          entry,
          () => `authority ${entry.address} (identity key ${entry.key.kid}) added to the draft`,
        );
      },
    );

  const poc = program.command('poc').description('points of contact of the draft');
  member(
    poc
      .command('add')
      .description('admit a point of contact to the draft (address from its certificate)'),
  ).action(
    async (
      opts: {
        from?: string;
        identity?: string;
        certificate?: string;
        name: string;
        country: string;
      },
      cmd: Command,
    ) => {
      const g = globals(cmd);
      const entry = await addPoc({
        dir: g.dir,
        keys: await readMemberKeys(opts),
        name: opts.name,
        country: opts.country,
      });
      emit(
        io,
        g.json,
        entry,
        () =>
          `point of contact ${entry.address} (identity key ${entry.key.kid}) added to the draft`,
      );
    },
  );

  const relay = program.command('relay').description('relays of the draft');
  relay
    .command('add')
    .description('list a relay in the draft')
    .requiredOption('--key <file>', 'the KeyRef printed by `rogatory-relay keygen`')
    .requiredOption('--url <url>', 'the relay URL, e.g. https://relay.wacap.example')
    .option('--id <address>', 'relay id (default relay@<network>)')
    .action(async (opts: { key: string; url: string; id?: string }, cmd: Command) => {
      const g = globals(cmd);
      const entry = await addRelay({
        dir: g.dir,
        keyFile: opts.key,
        url: opts.url,
        ...(opts.id === undefined ? {} : { id: opts.id }),
      });
      emit(
        io,
        g.json,
        entry,
        () => `relay ${entry.id} (${entry.url}, key ${entry.key.kid}) added to the draft`,
      );
    });

  const update = (c: Command, role: 'authority' | 'poc') =>
    c
      .command('update <address>')
      .description(
        `change the keys of a${role === 'authority' ? 'n authority' : ' point of contact'} in the draft: add an encryption certificate, rotate the identity key, retire a key`,
      )
      .option('--cert <file>', 'an encryption-key certificate (rogatory keys rotate-encryption)')
      .option(
        '--rotation <file>',
        'a KeyRotation signed by the listed identity key (rogatory keys rotate-identity); queued for the log',
      )
      .option('--drop-key <kid>', 'retire this encryption key')
      .action(
        async (
          address: string,
          opts: { cert?: string; rotation?: string; dropKey?: string },
          cmd: Command,
        ) => {
          const g = globals(cmd);
          const r = await updateMember({
            dir: g.dir,
            role,
            address,
            ...(opts.cert === undefined ? {} : { certFile: opts.cert }),
            ...(opts.rotation === undefined ? {} : { rotationFile: opts.rotation }),
            ...(opts.dropKey === undefined ? {} : { dropKid: opts.dropKey }),
          });
          emit(io, g.json, r, () => renderUpdate(r));
        },
      );
  update(authority, 'authority');
  update(poc, 'poc');
  relay
    .command('update <id>')
    .description(
      'replace a relay key in the draft (--key), or rotate it with a KeyRotation (--rotation)',
    )
    .option('--key <file>', 'the new KeyRef printed by `rogatory-relay keygen`')
    .option('--rotation <file>', 'a KeyRotation signed by the listed relay key; queued for the log')
    .action(async (id: string, opts: { key?: string; rotation?: string }, cmd: Command) => {
      const g = globals(cmd);
      const r = await updateMember({
        dir: g.dir,
        role: 'relay',
        address: id,
        ...(opts.key === undefined ? {} : { keyFile: opts.key }),
        ...(opts.rotation === undefined ? {} : { rotationFile: opts.rotation }),
      });
      emit(io, g.json, r, () => renderUpdate(r));
    });

  const anchor = program.command('anchor').description('this network’s anchor');
  anchor
    .command('export')
    .description('print the network id, root KeyRef and the fingerprint to compare out of band')
    .action(async (_opts: unknown, cmd: Command) => {
      const g = globals(cmd);
      const a = await exportAnchor(g.dir);
      emit(io, g.json, a, () =>
        [
          `network      ${a.network}`,
          `root key     ${a.root.kid}`,
          `fingerprint  ${a.fingerprint}`,
          'Give the peer secretariat the --json output; read the fingerprint to them over another channel.',
        ].join('\n'),
      );
    });

  const peer = program.command('peer').description('peer networks of the draft');
  peer
    .command('add <anchor-file>')
    .description(
      'import a peer network’s anchor (its `anchor export --json`) after comparing the fingerprint out of band',
    )
    .requiredOption(
      '--fingerprint <value>',
      'the fingerprint the peer secretariat read to you (spaces optional)',
    )
    .option('--via <hub>', 'reach this peer through a hub network that is a direct peer')
    .action(async (file: string, opts: { fingerprint: string; via?: string }, cmd: Command) => {
      const g = globals(cmd);
      const entry = await addPeer({
        dir: g.dir,
        anchorFile: file,
        fingerprint: opts.fingerprint,
        ...(opts.via === undefined ? {} : { via: opts.via }),
      });
      emit(
        io,
        g.json,
        entry,
        () =>
          `peer ${entry.network} (root ${entry.root.kid}${entry.via ? `, via ${entry.via}` : ', direct'}) added to the draft`,
      );
    });

  program
    .command('remove <address>')
    .description(
      'remove a relay, PoC or authority from the draft (revoke its keys first if they must stop working)',
    )
    .action(async (address: string, _opts: unknown, cmd: Command) => {
      const g = globals(cmd);
      const removed = await removeMember({ dir: g.dir, address });
      emit(io, g.json, removed, () => `${removed.role} ${removed.address} removed from the draft`);
    });

  program
    .command('revoke <kid-or-address>')
    .description('revoke a key, or every key of a member, in the next edition')
    .requiredOption('--reason <reason>', REVOCATION_REASONS.join(' | '))
    .option(
      '--at <iso-time>',
      'uses at or after this time are invalid (key-compromise: earliest suspected compromise); default now',
    )
    .action(async (target: string, opts: { reason: string; at?: string }, cmd: Command) => {
      const g = globals(cmd);
      const entries = await revoke({
        dir: g.dir,
        target,
        reason: opts.reason,
        ...(opts.at === undefined ? {} : { revokedAt: parseTime(opts.at, '--at') }),
        clock,
      });
      emit(io, g.json, entries, () =>
        entries
          .map(
            (e) =>
              `key ${e.kid} revoked (${e.reason}) from ${formatTime(e.revokedAt)} in the next edition`,
          )
          .join('\n'),
      );
    });

  program
    .command('publish')
    .description(
      'append the queued statements and the next edition (version + 1) to the log, sign the checkpoint, write the publication',
    )
    .option('--valid-days <days>', 'validUntil = now + days', '90')
    .option('--statements-only', 'publish the queued statements without a new edition')
    .option(
      '--passphrase-file <file>',
      'read the passphrase from the first line of this file (else $ROGATORY_PASSPHRASE or a prompt)',
    )
    .action(
      async (
        opts: { validDays: string; statementsOnly?: boolean; passphraseFile?: string },
        cmd: Command,
      ) => {
        const g = globals(cmd);
        const validDays = parseDays(opts.validDays, '--valid-days');
        const secret = await passphrase(io, opts.passphraseFile, 'Root key passphrase: ');
        const result = await publishEdition({
          dir: g.dir,
          passphrase: secret,
          validDays,
          statementsOnly: opts.statementsOnly === true,
          clock,
        });
        const b = result.manifest?.body;
        const p = result.publication;
        const counts = (['rotation', 'revocation', 'introduction', 'manifest'] as const)
          .map((k) => [k, p.entries.filter((e) => e.kind === k).length] as const)
          .filter(([, n]) => n > 0)
          .map(([k, n]) => `${n} ${k}${n > 1 ? 's' : ''}`)
          .join(', ');
        emit(
          io,
          g.json,
          {
            version: result.version,
            hash: result.hash,
            file: result.file,
            issuedAt: b?.issuedAt ?? null,
            validUntil: b?.validUntil ?? null,
            publication: p,
          },
          () =>
            [
              ...(b
                ? [
                    `edition ${b.version} of ${b.network} published: ${result.file}`,
                    `hash         ${result.hash}`,
                    `valid until  ${formatTime(b.validUntil)}`,
                    `members      ${b.relays.length} relays, ${b.pocs.length} PoCs, ${b.authorities.length} authorities, ${b.peers.length} peers, ${b.revoked.length} revoked keys`,
                  ]
                : ['statements published without a new edition']),
              `log          ${p.previousSize} -> ${p.size} (${counts}): ${p.file}`,
              'Push it to the relays: rogatory-network push --relay <url>',
            ].join('\n'),
        );
      },
    );

  const log = program.command('log').description('the network’s transparency log');
  log
    .command('add <file>')
    .description(
      'queue signed statements for the next publish: key rotations, revocations, PoC introductions (checked against the current edition)',
    )
    .action(async (file: string, _opts: unknown, cmd: Command) => {
      const g = globals(cmd);
      const queued = await addStatements({ dir: g.dir, file });
      emit(io, g.json, { queued }, () =>
        queued
          .map(
            (q) =>
              `${q.kind} of ${q.subject} (${q.hash.slice(0, 16)}…): ${q.status === 'queued' ? 'queued for the next publish' : q.status}`,
          )
          .join('\n'),
      );
    });
  log
    .command('show')
    .description('size, root hash and entries of the log; the statements queued')
    .action(async (_opts: unknown, cmd: Command) => {
      const g = globals(cmd);
      const r = await showLog(g.dir);
      emit(io, g.json, r, () =>
        [
          `log of ${r.network}: ${r.size} entries, root ${r.rootHash}`,
          '',
          table(
            ['INDEX', 'KIND', 'HASH'],
            r.entries.map((e) => [String(e.index), e.kind, e.hash]),
          ),
          '',
          `${r.publications} publications; ${r.queued} statements queued for the next publish`,
        ].join('\n'),
      );
    });
  log
    .command('verify')
    .description(
      'recompute the tree from publications/ and check every checkpoint, proof and edition against log.db',
    )
    .action(async (_opts: unknown, cmd: Command) => {
      const g = globals(cmd);
      const r = await verifyLog(g.dir);
      emit(
        io,
        g.json,
        r,
        () =>
          `${r.publications} publications of ${r.network} form one chain to size ${r.size} (root ${r.rootHash}): ${r.kinds.manifest} editions, ${r.kinds.rotation} rotations, ${r.kinds.revocation} revocations, ${r.kinds.introduction} introductions; log.db agrees.`,
      );
    });

  program
    .command('push')
    .description(
      'give a relay of this network every publication it does not hold yet, in order; print the witnesses that cosigned',
    )
    .requiredOption('--relay <url>', 'the relay URL, e.g. https://relay.wacap.example')
    .action(async (opts: { relay: string }, cmd: Command) => {
      const g = globals(cmd);
      const r = await pushPublications({ dir: g.dir, relay: opts.relay });
      emit(io, g.json, r, () =>
        [
          `${r.relay} held ${r.relaySize} entries of ${r.network}'s log`,
          ...(r.pushed.length === 0
            ? ['nothing to push: it is up to date']
            : r.pushed.map(
                (p) =>
                  `pushed ${p.file}${p.edition === null ? '' : ` (edition ${p.edition})`}: cosigned by ${p.cosigners.length === 0 ? 'no witness yet' : p.cosigners.map(cosignerName).join(', ')}`,
              )),
        ].join('\n'),
      );
    });

  program
    .command('diff [from] [to]')
    .description(
      'what changes between two editions (numbers, "draft" or edition files); default: the last edition and the draft',
    )
    .action(
      async (from: string | undefined, to: string | undefined, _opts: unknown, cmd: Command) => {
        const g = globals(cmd);
        const s = await loadSecretariat(g.dir);
        const now = clock();
        const last = s.editions.at(-1);
        const a =
          from === undefined
            ? last
              ? sideOfEdition(last)
              : EMPTY_SIDE
            : await sideOf(s, from, now);
        const b = to === undefined ? sideOfDraft(s.draft) : await sideOf(s, to, now);
        const d = diffEditions(a, b);
        if (to !== undefined && to !== 'draft') {
          emit(io, g.json, d, () => renderDiff(d));
          return;
        }
        // Towards the draft: also what the next publication logs besides the edition.
        const queued = await queuedStatements(g.dir);
        emit(io, g.json, { ...d, queued }, () =>
          [
            renderDiff(d),
            ...queued.map(
              (q) =>
                `+ log ${q.kind} ${q.subject}${q.kid === undefined ? '' : ` key ${q.kid}`} (next publish)`,
            ),
          ].join('\n'),
        );
      },
    );

  program
    .command('verify [file]')
    .description(
      'verify the chain of editions from version 1 and the log, or one edition or publication file against the root or a peer anchor',
    )
    .action(async (file: string | undefined, _opts: unknown, cmd: Command) => {
      const g = globals(cmd);
      const s = await loadSecretariat(g.dir);
      const now = clock();
      if (file === undefined) {
        const r = { ...chainReport(s, now), log: await verifyLog(g.dir) };
        const logLine = `log: ${r.log.publications} publications form one chain to size ${r.log.size}; every checkpoint, proof and edition agrees with log.db.`;
        emit(io, g.json, r, () =>
          r.last === null
            ? `no edition of ${r.network} published yet (root ${r.rootKid}, fingerprint ${r.fingerprint})`
            : [
                `editions 1..${r.editions} of ${r.network} form one chain: each is signed by the root ${r.rootKid}`,
                `(fingerprint ${r.fingerprint}) and names the hash of the one before.`,
                `edition ${r.last.version} (${r.last.hash}) lists ${r.last.relays} relays, ${r.last.pocs} PoCs, ${r.last.authorities} authorities, ${r.last.peers} peers, ${r.last.revoked} revoked keys;`,
                `valid until ${formatTime(r.last.validUntil)}${r.last.expired ? ' (EXPIRED: publish a new edition)' : ''}.`,
                logLine,
              ].join('\n'),
        );
        return;
      }
      const value = await readJsonFile(file, 'the edition file');
      if ((value as { type?: unknown } | null)?.type === 'publication') {
        const r = await verifyPublicationFile(g.dir, value, file);
        emit(
          io,
          g.json,
          r,
          () =>
            `${file}: publication of ${r.network}, log ${r.previousSize} -> ${r.size} (${r.entries} entries), signed by the root ${s.config.root.kid}; ${r.inChain ? 'it is in this folder’s chain' : 'NOT in this folder’s chain'}.`,
        );
        return;
      }
      const r = verifyEditionValue(s, value, file, now);
      emit(io, g.json, r, () =>
        [
          `${file}: edition ${r.version} of ${r.network} (${r.hash})`,
          r.verifiedUnder === 'root'
            ? `signed by this network's root ${r.rootKid}; ${r.inChain ? `it is edition ${r.version} of this folder's chain` : 'not (yet) in this folder’s chain'}.`
            : `signed by the root ${r.rootKid} this network lists as the anchor of ${r.network}.`,
          `valid until ${formatTime(r.validUntil)}${r.expired ? ' (EXPIRED)' : ''}.`,
        ].join('\n'),
      );
    });

  program
    .command('show [edition]')
    .description('list the members of the draft (default) or of an edition')
    .action(async (edition: string | undefined, _opts: unknown, cmd: Command) => {
      const g = globals(cmd);
      const s = await loadSecretariat(g.dir);
      const side = await sideOf(s, edition ?? 'draft', clock());
      emit(io, g.json, side, () =>
        [
          `${s.config.network}, ${side.label}`,
          '',
          table(
            ['RELAY', 'URL', 'KEY'],
            side.relays.map((r) => [r.id, r.url, r.key.kid]),
          ),
          '',
          table(
            ['POINT OF CONTACT', 'NAME', 'COUNTRY', 'KEY'],
            side.pocs.map((p) => [p.address, p.name, p.country, p.key.kid]),
          ),
          '',
          table(
            ['AUTHORITY', 'NAME', 'COUNTRY', 'COMPETENCES', 'LANGUAGES', 'KEY'],
            side.authorities.map((a) => [
              a.address,
              a.name,
              a.country,
              a.competences.join(','),
              a.languages.join(','),
              a.key.kid,
            ]),
          ),
          '',
          table(
            ['PEER', 'ROOT', 'VIA'],
            side.peers.map((p) => [p.network, p.root.kid, p.via ?? 'direct']),
          ),
          '',
          table(
            ['REVOKED KEY', 'REASON', 'FROM'],
            side.revoked.map((r) => [r.kid, r.reason, formatTime(r.revokedAt)]),
          ),
        ].join('\n'),
      );
    });

  program
    .command('status')
    .description('network, root fingerprint, last edition and pending changes')
    .action(async (_opts: unknown, cmd: Command) => {
      const g = globals(cmd);
      const s = await loadSecretariat(g.dir);
      const r = chainReport(s, clock());
      const last = s.editions.at(-1);
      const pending = diffEditions(last ? sideOfEdition(last) : EMPTY_SIDE, sideOfDraft(s.draft));
      const log = await logStatus(g.dir);
      const value = {
        ...r,
        draftBasedOn: s.draft.basedOn,
        pendingChanges: !isEmptyDiff(pending),
        log,
      };
      const q = log.queued;
      emit(io, g.json, value, () =>
        [
          `network       ${r.network}`,
          `root key      ${r.rootKid}`,
          `fingerprint   ${r.fingerprint}`,
          `editions      ${r.editions}${r.last ? `, last v${r.last.version} valid until ${formatTime(r.last.validUntil)}${r.last.expired ? ' (EXPIRED)' : ''}` : ''}`,
          `draft         ${value.pendingChanges ? 'has changes to publish (see diff)' : 'no changes'}`,
          `log           ${log.size} entries, ${log.publications} publications`,
          `queued        ${q.rotations} rotations, ${q.revocations} revocations, ${q.introductions} introductions`,
          ...log.relays.map(
            (x) =>
              `relay         ${x.url}: pushed up to ${x.pushed}${x.unpushed > 0 ? `, ${x.unpushed} publications NOT PUSHED (push --relay ${x.url})` : ', up to date'}`,
          ),
        ].join('\n'),
      );
    });

  for (const cmd of program.commands) {
    cmd.exitOverride();
    for (const sub of cmd.commands) sub.exitOverride();
  }
  return program;
}

/** Run the CLI on `argv` (user arguments only) and return the exit code (README.md lists them). */
export async function runCli(
  argv: readonly string[],
  io: CliIO,
  options: CliOptions = {},
): Promise<number> {
  const program = buildProgram(io, options);
  try {
    await ready();
    await program.parseAsync([...argv], { from: 'user' });
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? EXIT.ok : EXIT.usage;
    return reportError(io, argv.includes('--json'), err);
  }
  return EXIT.ok;
}
