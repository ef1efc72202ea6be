import { describe, expect, it } from 'vitest';
import { viewBypassReason, type ViewFact, type ViewRead } from '../../../src/explain/read-view-facts.js';

const table = { schema: 'app', name: 'items' };
const readsItems = (over: Partial<ViewRead> = {}): ViewRead => ({
  schema: 'app',
  name: 'items',
  kind: 'r',
  owner: 'owner',
  forced: true,
  ownerHasPrivs: false,
  ...over,
});
const view = (name: string, over: Partial<ViewFact>): ViewFact => ({
  schema: 'app',
  name,
  owner: 'app_user',
  ownerSuperuser: false,
  ownerBypassRls: false,
  invoker: false,
  reads: [readsItems()],
  ...over,
});
const mapOf = (...views: ViewFact[]) => new Map(views.map((v) => [`${v.schema}.${v.name}`, v]));

describe('viewBypassReason: when the policies of a table do not apply through a view', () => {
  it('a superuser owner, a BYPASSRLS owner, or the table owner without FORCE bypass them', () => {
    const su = view('su', { owner: 'postgres', ownerSuperuser: true });
    const by = view('by', { owner: 'etl', ownerBypassRls: true });
    const own = view('own', { owner: 'owner', reads: [readsItems({ ownerHasPrivs: true, forced: false })] });
    const forced = view('forced', { owner: 'owner', reads: [readsItems({ ownerHasPrivs: true, forced: true })] });
    const plain = view('plain', {});
    const views = mapOf(su, by, own, forced, plain);
    expect(viewBypassReason(views, su, table)).toBe('the view app.su reads it as its owner postgres, a superuser');
    expect(viewBypassReason(views, by, table)).toBe('the view app.by reads it as its owner etl, who has BYPASSRLS');
    expect(viewBypassReason(views, own, table)).toBe(
      'the view app.own reads it as its owner owner, who owns app.items, which does not force row level security',
    );
    expect(viewBypassReason(views, forced, table)).toBeUndefined();
    expect(viewBypassReason(views, plain, table)).toBeUndefined();
    expect(viewBypassReason(views, su, { schema: 'app', name: 'other' })).toBeUndefined();
  });

  it('a security-invoker view reads as its reader: as the outer view owner when nested, as the app role at the top', () => {
    const inner = view('inner', { owner: 'postgres', ownerSuperuser: true, invoker: true });
    const outer = view('outer', { owner: 'postgres', ownerSuperuser: true, reads: [{ ...readsItems(), schema: 'app', name: 'inner', kind: 'v' }] });
    const outerPlain = view('outer_plain', { reads: [{ ...readsItems(), schema: 'app', name: 'inner', kind: 'v' }] });
    const views = mapOf(inner, outer, outerPlain);
    expect(viewBypassReason(views, inner, table)).toBeUndefined();
    expect(viewBypassReason(views, outer, table)).toBe('the view app.outer (through app.inner) reads it as its owner postgres, a superuser');
    expect(viewBypassReason(views, outerPlain, table)).toBeUndefined();
  });

  it('a definer view inside a view reads as its own owner', () => {
    const inner = view('inner', { owner: 'postgres', ownerSuperuser: true });
    const outer = view('outer', { reads: [{ ...readsItems(), schema: 'app', name: 'inner', kind: 'v' }] });
    expect(viewBypassReason(mapOf(inner, outer), outer, table)).toBe('the view app.inner reads it as its owner postgres, a superuser');
  });
});
