import { readFile } from 'node:fs/promises';
import { parse, printParseErrorCode, type ParseError } from 'jsonc-parser';
import { nodeFail, type NodeErrorCode } from '../errors.js';

/**
 * Why a file could not be read, in words a user acts on: missing, a folder,
 * not readable. Never the operating system's message (it may quote paths
 * the user did not give, or data).
 */
export function whyUnreadable(cause: unknown): string {
  const code = (cause as NodeJS.ErrnoException | undefined)?.code;
  switch (code) {
    case 'ENOENT':
      return 'does not exist';
    case 'EACCES':
    case 'EPERM':
      return 'is not readable (permission denied)';
    case 'EISDIR':
      return 'is a folder, not a file';
    case 'ENOTDIR':
      return 'is not reachable: a part of its path is not a folder';
    case 'ELOOP':
      return 'is a symbolic link, which is refused';
    case 'EMFILE':
    case 'ENFILE':
      return 'cannot be opened now (too many open files)';
    default:
      return `cannot be read (${code ?? 'unknown error'})`;
  }
}

/** "line L, column C" of an offset in `text`. */
function lineAndColumn(text: string, offset: number): string {
  const at = Math.min(offset, text.length);
  const before = text.slice(0, at);
  const line = before.split('\n').length;
  const column = at - before.lastIndexOf('\n');
  return `line ${String(line)}, column ${String(column)}`;
}

/** Where a JSON parse failed, from V8's "position N" if it says. */
function whereInJson(text: string, cause: unknown): string {
  const m = /position (\d+)/.exec(cause instanceof Error ? cause.message : '');
  return m ? ` at ${lineAndColumn(text, Number(m[1]))}` : '';
}

/**
 * Read and parse a JSON file, failing with `code` and a message naming the
 * file and the reason: missing, not readable, empty, not JSON (with the
 * line and column, never the text). `comments`: line and block comments
 * are allowed (templates from `rogatory draft new`).
 */
export async function readJsonFile(
  path: string,
  what: string,
  code: NodeErrorCode = 'INPUT_INVALID',
  options: { comments?: boolean } = {},
): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (cause) {
    return nodeFail(code, `${what} ${path} ${whyUnreadable(cause)}`, { cause });
  }
  if (text.trim() === '') return nodeFail(code, `${what} ${path} is empty`);
  if (options.comments === true) {
    const errors: ParseError[] = [];
    const value: unknown = parse(text, errors, {
      disallowComments: false,
      allowTrailingComma: false,
    });
    const first = errors[0];
    if (first !== undefined)
      return nodeFail(
        code,
        `${what} ${path} is not JSON at ${lineAndColumn(text, first.offset)} (${printParseErrorCode(first.error)})`,
      );
    return value;
  }
  try {
    return JSON.parse(text);
  } catch (cause) {
    return nodeFail(code, `${what} ${path} is not JSON${whereInJson(text, cause)}`);
  }
}
