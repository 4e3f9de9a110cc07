import { describe, expect, it } from 'vitest';
import { subjectOf } from './client.js';

const jwt = (payload: object) => `e30.${btoa(JSON.stringify(payload)).replace(/=+$/, '').replace(/\+/g, '-').replace(/\//g, '_')}.sig`;

describe('subjectOf', () => {
  it('reads the sub claim of a base64url JWT payload, unicode included', () => {
    expect(subjectOf(jwt({ sub: 'tab-1', role: 'client' }))).toBe('tab-1');
    const sub = 'tablette-é?>>';
    const b64 = btoa(String.fromCharCode(...new TextEncoder().encode(JSON.stringify({ sub })))).replace(/=+$/, '').replace(/\+/g, '-').replace(/\//g, '_');
    expect(subjectOf(` e30.${b64}.sig `)).toBe(sub);
  });

  it('refuses tokens without a readable subject with ERR_UNAUTHORIZED', () => {
    for (const bad of ['nope', jwt({ role: 'client' }), 'a.!!!.c']) expect(() => subjectOf(bad)).toThrow(expect.objectContaining({ code: 'ERR_UNAUTHORIZED' }));
  });
});
