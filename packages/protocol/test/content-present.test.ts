import { describe, expect, it } from 'vitest';
import {
  ANSWER_TYPES,
  REQUEST_TYPES,
  contentTemplate,
  exampleAnswer,
  exampleRequest,
  renderContent,
} from '../src/index.js';

/** The template without its comment lines is the content itself (comments are whole lines). */
function uncomment(template: string): unknown {
  return JSON.parse(
    template
      .split('\n')
      .filter((l) => !/^\s*\/\//.test(l))
      .join('\n'),
  );
}

describe('content templates and rendering', () => {
  it('a template of every request and answer type is the example content with a comment on every field', () => {
    for (const content of [
      ...REQUEST_TYPES.map((t) => exampleRequest(t)),
      ...ANSWER_TYPES.map((t) => exampleAnswer(t)),
    ]) {
      const template = contentTemplate(content, ['heading']);
      expect(uncomment(template)).toEqual(content);
      const lines = template.split('\n');
      expect(lines[0]).toBe('// heading');
      // Every property line follows a comment block that names the field.
      lines.forEach((line, i) => {
        if (!/^\s*"[A-Za-z]+": /.test(line)) return;
        const block: string[] = [];
        for (let j = i - 1; j >= 0 && /^\s*\/\/ /.test(lines[j]!); j--) block.unshift(lines[j]!);
        expect(block.join(' '), `comment above ${line.trim()}`).toMatch(/\((required|optional)\)/);
      });
    }
  });

  it('lists optional fields the example leaves out, and names enumerations', () => {
    const template = contentTemplate(exampleRequest('mla'));
    expect(template).toMatch(/may also be given: "article" — Article \(optional\)/);
    expect(template).toMatch(/Instrument \(required\): one of untoc, bilateral-treaty/);
  });

  it('renders titles, never keys, and numbers list entries', () => {
    const text = renderContent(exampleRequest('extradition'));
    expect(text).toMatch(/^Request type: extradition$/m);
    expect(text).toContain('Case reference:');
    expect(text).not.toContain('caseReference');
    expect(text).toMatch(/^ {4}Offence 1:$/m);
  });
});
