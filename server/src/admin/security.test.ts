import { describe, expect, it } from 'vitest';
import { redactSecrets } from '../log-pino.js';
import { niceTicks } from '../console/charts.js';
import { openApiDocument, toOpenApiPath } from './openapi.js';
import { originAllowed, parseCookies } from './security.js';

describe('console security helpers', () => {
  it('parses cookies (first wins, quoted and encoded values)', () => {
    expect(parseCookies('a=1; tessera_session=abc%3D; b="q"; a=2')).toEqual({ a: '1', tessera_session: 'abc=', b: 'q' });
    expect(parseCookies(undefined)).toEqual({});
    expect(parseCookies('junk; =x; c=%E0%A4%A')).toEqual({ c: '%E0%A4%A' });
  });

  it('allows only the own origin and configured ones', () => {
    expect(originAllowed(undefined, 'http://h:1', [])).toBe(true);
    expect(originAllowed('http://h:1', 'http://h:1', [])).toBe(true);
    expect(originAllowed('http://h:2', 'http://h:1', [])).toBe(false);
    expect(originAllowed('https://app.example', 'http://h:1', ['https://app.example'])).toBe(true);
  });

  it('redacts JWTs and Tessera secrets from free text', () => {
    const jwt = 'eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJjMSJ9.c2lnbmF0dXJlLWJ5dGVz';
    expect(redactSecrets(`token ${jwt} and tse_${'a'.repeat(43)} and tsr_${'b'.repeat(43)}.`)).toBe('token [Redacted] and [Redacted] and [Redacted].');
    expect(redactSecrets('client c-1 joined task-abc')).toBe('client c-1 joined task-abc');
  });

  it('documents every operation with its auth, and maps express paths', () => {
    const doc = openApiDocument('http://x') as { paths: Record<string, Record<string, { security: unknown[]; responses: Record<string, unknown> }>> };
    for (const [path, ops] of Object.entries(doc.paths)) {
      for (const [m, op] of Object.entries(ops)) {
        expect(Array.isArray(op.security), `${m} ${path}`).toBe(true);
        if (op.security.length && path.startsWith('/api/')) expect(Object.keys(op.responses), `${m} ${path}`).toEqual(expect.arrayContaining(['401', '403']));
      }
    }
    expect(doc.paths['/api/login']!.post!.security).toEqual([]);
    expect(toOpenApiPath('/api/tasks/:id/rounds')).toBe('/api/tasks/{id}/rounds');
  });

  it('picks round chart ticks', () => {
    expect(niceTicks(0, 1)).toEqual([0, 0.25, 0.5, 0.75, 1]);
    expect(niceTicks(0.12, 0.93)).toEqual([0, 0.25, 0.5, 0.75, 1]);
    expect(niceTicks(0, 7.3)).toEqual([0, 2, 4, 6, 8]);
    expect(niceTicks(5, 5).length).toBeGreaterThan(1);
  });
});
