import { describe, expect, it } from 'vitest';
import { KNOWN_CVES, affects, splitVersion, versionLabel } from '../../src/audit/known-cves.js';

const cve = (id: string) => KNOWN_CVES.find((c) => c.id === id)!;

describe('the CVE table of RLS070', () => {
  it('reads server_version_num in both numberings', () => {
    expect(splitVersion(140013)).toEqual([14, 13]);
    expect(splitVersion(180004)).toEqual([18, 4]);
    expect(splitVersion(90613)).toEqual([906, 13]);
    expect(versionLabel(906, 13)).toBe('9.6.13');
    expect(versionLabel(14, 13)).toBe('14.13');
  });

  it('CVE-2024-10976: affected below 17.1, 16.5, 15.9, 14.14, 13.17; fixed from there', () => {
    const c = cve('CVE-2024-10976');
    expect(affects(c, 140013)).toEqual({ affected: true, fixedIn: '14.14' });
    expect(affects(c, 140014).affected).toBe(false);
    expect(affects(c, 170000)).toEqual({ affected: true, fixedIn: '17.1' });
    expect(affects(c, 170001).affected).toBe(false);
    expect(affects(c, 180000).affected).toBe(false); // released after the fix
    expect(affects(c, 110022)).toEqual({ affected: true }); // out of support: no fix on 11
  });

  it('CVE-2023-2455 before 15.3 / 14.8; CVE-2023-39418 on 15.0-15.3 only (MERGE came in 15)', () => {
    expect(affects(cve('CVE-2023-2455'), 140007).affected).toBe(true);
    expect(affects(cve('CVE-2023-2455'), 140008).affected).toBe(false);
    expect(affects(cve('CVE-2023-2455'), 150002).affected).toBe(true);
    expect(affects(cve('CVE-2023-39418'), 150003).affected).toBe(true);
    expect(affects(cve('CVE-2023-39418'), 150004).affected).toBe(false);
    expect(affects(cve('CVE-2023-39418'), 140000).affected).toBe(false);
    expect(affects(cve('CVE-2023-39418'), 160000).affected).toBe(false);
  });

  it('CVE-2019-10130 (9.5-11) does not reach 14, whatever the 9.x numbering', () => {
    expect(affects(cve('CVE-2019-10130'), 90612).affected).toBe(true);
    expect(affects(cve('CVE-2019-10130'), 90613).affected).toBe(false);
    expect(affects(cve('CVE-2019-10130'), 140000).affected).toBe(false);
  });

  it('names a source and a date for every line', () => {
    for (const c of KNOWN_CVES) {
      expect(c.id).toMatch(/^CVE-\d{4}-\d+$/);
      expect(c.source).toMatch(/^https:\/\/www\.postgresql\.org\//);
      expect(c.published).toMatch(/^\d{4}-\d{2}-\d{2}$/);
    }
  });
});
