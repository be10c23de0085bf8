import type { Command } from 'commander';
import { describeVouch, type DirectoryFilter } from '../directory/directory.js';
import { emit, formatTime, table } from './io.js';
import { asUser, globals, type CliRun } from './session.js';

export function registerDirectory(program: Command, run: CliRun): void {
  const { io } = run;
  program
    .command('directory')
    .description(
      'authorities and points of contact of every trusted manifest, and authorities introduced to this node',
    )
    .option('--country <cc>', 'ISO 3166-1 alpha-2 country code')
    .option('--network <id>', 'network id')
    .option('--type <requestType>', 'a request type the authority handles')
    .option('--language <tag>', 'a language the authority accepts')
    .option('--text <text>', 'part of the name or the address')
    .action(
      async (
        opts: {
          country?: string;
          network?: string;
          type?: string;
          language?: string;
          text?: string;
        },
        cmd: Command,
      ) => {
        const g = globals(cmd, io);
        const filter: DirectoryFilter = {
          ...(opts.country === undefined ? {} : { country: opts.country }),
          ...(opts.network === undefined ? {} : { network: opts.network }),
          ...(opts.type === undefined ? {} : { type: opts.type }),
          ...(opts.language === undefined ? {} : { language: opts.language }),
          ...(opts.text === undefined ? {} : { text: opts.text }),
        };
        const entries = await asUser(io, g, (node, actor) => node.directory(actor, filter));
        emit(io, g.json, { entries }, () =>
          entries.length === 0
            ? 'no entry matches'
            : table(
                ['ADDRESS', 'ROLE', 'NAME', 'COUNTRY', 'COMPETENCES', 'LANGUAGES', 'VOUCHED BY'],
                entries.map((e) => [
                  e.address,
                  e.role,
                  e.name ?? '-',
                  e.country ?? '-',
                  e.competences.join(',') || '-',
                  e.languages.join(',') || '-',
                  e.vouchedBy.map((v) => describeVouch(v, formatTime)).join('; '),
                ]),
              ),
        );
      },
    );
}
