import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import pg from 'pg';
import { parsePolicy } from '../../src/policy/load-policy.js';
import { compileScript } from '../../src/compile/render-sql.js';
import { withCurrentTenant } from '../../src/tenant/with-tenant.js';
import { tenantContext } from '../../src/tenant/tenant-context.js';
import { TenantContextError } from '../../src/tenant/tenant-context-error.js';
import { validateTenantId } from '../../src/tenant/validate-tenant.js';
import { describeEachServer, uniqueName } from '../helpers/db.js';

/**
 * The middleware of docs/runtime.md, on real HTTP requests: an Express-style
 * `(req, res, next)` chain and a Fastify-style `onRequest(request, reply, done)`
 * hook, each built on node:http (no framework installed), each serving
 * concurrent requests for two tenants from one pool as the app role.
 */

const A = '00000000-0000-4000-8000-00000000000a';
const B = '00000000-0000-4000-8000-00000000000b';
const ROWS: Record<string, number[]> = { [A]: [1, 2, 3], [B]: [11, 12] };

/** Resolves once `count` callers have arrived: proves the requests were in flight together, without timing. */
function barrier(count: number): () => Promise<void> {
  let arrived = 0;
  let open!: () => void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  return () => {
    arrived += 1;
    if (arrived === count) open();
    return opened;
  };
}

function statusOf(error: unknown): number {
  return error instanceof TenantContextError && error.code === 'invalid-tenant' ? 400 : 500;
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

/** The tenant of a request. A test reads a header; a real server takes it from the verified session or token. */
function tenantOf(req: IncomingMessage): unknown {
  return req.headers['x-tenant-id'];
}

// ---- Express-style: app.use(middleware), handlers (req, res, next), an error handler.
type Next = (error?: unknown) => void;
type ExpressHandler = (req: IncomingMessage, res: ServerResponse, next: Next) => void;

function expressStyle(routes: Record<string, ExpressHandler[]>): http.RequestListener {
  return (req, res) => {
    const chain = routes[new URL(req.url ?? '/', 'http://x').pathname] ?? [];
    const fail = (error: unknown) => sendJson(res, statusOf(error), { error: (error as Error).message, code: (error as TenantContextError).code });
    const dispatch = (i: number, error?: unknown): void => {
      if (error !== undefined) return fail(error);
      if (i === chain.length) return sendJson(res, 404, { error: 'not found' });
      try {
        chain[i](req, res, (e?: unknown) => dispatch(i + 1, e));
      } catch (e) {
        fail(e);
      }
    };
    dispatch(0);
  };
}

// ---- Fastify-style: addHook('onRequest', (request, reply, done)), async handlers whose value is the reply.
interface FastifyRequest {
  raw: IncomingMessage;
  headers: IncomingMessage['headers'];
}
type OnRequestHook = (request: FastifyRequest, reply: unknown, done: (error?: unknown) => void) => void;
type FastifyHandler = (request: FastifyRequest) => Promise<unknown>;

function fastifyStyle(onRequest: OnRequestHook[], routes: Record<string, FastifyHandler>): http.RequestListener {
  return (req, res) => {
    const request: FastifyRequest = { raw: req, headers: req.headers };
    const reply = {};
    const handler = routes[new URL(req.url ?? '/', 'http://x').pathname];
    const fail = (error: unknown) => sendJson(res, statusOf(error), { error: (error as Error).message, code: (error as TenantContextError).code });
    const runHook = (i: number, error?: unknown): void => {
      if (error !== undefined) return fail(error);
      if (i < onRequest.length) return onRequest[i](request, reply, (e?: unknown) => runHook(i + 1, e));
      if (!handler) return sendJson(res, 404, { error: 'not found' });
      handler(request).then((body) => sendJson(res, 200, body), fail);
    };
    runHook(0);
  };
}

async function listen(listener: http.RequestListener): Promise<{ url: string; close(): Promise<void> }> {
  const server = http.createServer(listener);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

async function get(url: string, tenant?: string): Promise<{ status: number; body: any }> {
  const response = await fetch(url, { headers: tenant === undefined ? {} : { 'x-tenant-id': tenant } });
  return { status: response.status, body: await response.json() };
}

describeEachServer('tenant middleware over HTTP', (ctx) => {
  const app = uniqueName('tenant_http');
  let pool: pg.Pool;
  let checkouts = 0;

  beforeAll(async () => {
    await ctx.db.runScript(`
      CREATE ROLE ${app} LOGIN PASSWORD 'secret';
      CREATE SCHEMA rt;
      CREATE TABLE rt.notes (tenant_id uuid NOT NULL, id int NOT NULL, PRIMARY KEY (tenant_id, id));
      INSERT INTO rt.notes VALUES ${Object.entries(ROWS)
        .flatMap(([t, ids]) => ids.map((id) => `('${t}', ${id})`))
        .join(', ')};
      GRANT USAGE ON SCHEMA rt TO ${app};
      GRANT SELECT ON rt.notes TO ${app};
    `);
    const model = await parsePolicy([
      { file: 'policy.yaml', text: `version: 1\nroles:\n  app: [${app}]\nschemas:\n  rt:\n    tables:\n      notes: tenant\n` },
    ]);
    await ctx.db.runScript(compileScript(model, { transactional: true }));
    pool = new pg.Pool({ connectionString: ctx.db.urlAs(app), max: 5 });
    pool.on('acquire', () => (checkouts += 1));
  });

  afterAll(async () => {
    await pool?.end();
    await ctx.db.query(`DROP OWNED BY ${app}`).catch(() => undefined);
    await ctx.db.query(`DROP ROLE IF EXISTS ${app}`).catch(() => undefined);
  });

  /** What both servers answer on /notes: the rows the request's tenant sees, read deep down without passing the tenant. */
  async function listNotes(arrive: () => Promise<void>) {
    await arrive();
    const rows = await withCurrentTenant(pool, async (client) => {
      const { rows } = await client.query("SELECT tenant_id, id, current_setting('app.tenant_id') AS setting FROM rt.notes ORDER BY id");
      return rows;
    });
    return { tenant: tenantContext.current(), rows };
  }

  async function concurrentRequests(url: string, arrive: { count: number }) {
    const tenants = Array.from({ length: arrive.count }, (_, i) => (i % 2 === 0 ? A : B));
    const before = checkouts;
    const responses = await Promise.all(tenants.map((t) => get(`${url}/notes`, t)));
    // One connection checked out per request: the counter the 400 tests rely on does count.
    expect(checkouts - before).toBe(tenants.length);
    responses.forEach(({ status, body }, i) => {
      const tenant = tenants[i];
      expect(status).toBe(200);
      expect(body.tenant).toBe(tenant);
      expect(body.rows.map((r: { id: number }) => r.id)).toEqual(ROWS[tenant]);
      for (const row of body.rows) expect(row).toMatchObject({ tenant_id: tenant, setting: tenant });
    });
  }

  describe('Express-style (req, res, next) middleware', () => {
    const concurrency = { count: 12 };
    let arrive = barrier(concurrency.count);
    let server: Awaited<ReturnType<typeof listen>>;

    // The middleware of docs/runtime.md.
    const tenantMiddleware: ExpressHandler = (req, _res, next) => {
      let tenantId: string;
      try {
        tenantId = validateTenantId(tenantOf(req), 'uuid');
      } catch (error) {
        return next(error);
      }
      tenantContext.run(tenantId, next);
    };
    const notes: ExpressHandler = (_req, res, next) => {
      listNotes(() => arrive()).then((body) => sendJson(res, 200, body), next);
    };

    beforeAll(async () => {
      server = await listen(expressStyle({ '/notes': [tenantMiddleware, notes], '/unscoped': [notes] }));
    });
    afterAll(() => server?.close());

    it("answers concurrent requests for two tenants, each with only its tenant's rows", async () => {
      await concurrentRequests(server.url, concurrency);
    });

    it('answers 400 without a tenant or with a malformed one, before any query', async () => {
      const before = checkouts;
      for (const tenant of [undefined, '', 'not-a-uuid']) {
        const { status, body } = await get(`${server.url}/notes`, tenant);
        expect(status).toBe(400);
        expect(body.code).toBe('invalid-tenant');
      }
      expect(checkouts).toBe(before);
    });

    it('fails a route that skipped the middleware, instead of querying without a tenant', async () => {
      arrive = barrier(1);
      const before = checkouts;
      const { status, body } = await get(`${server.url}/unscoped`, A);
      expect(status).toBe(500);
      expect(body.code).toBe('no-tenant-context');
      expect(checkouts).toBe(before);
    });
  });

  describe('Fastify-style onRequest hook', () => {
    const concurrency = { count: 12 };
    const arrive = barrier(concurrency.count);
    let server: Awaited<ReturnType<typeof listen>>;

    // The hook of docs/runtime.md.
    const tenantHook: OnRequestHook = (request, _reply, done) => {
      let tenantId: string;
      try {
        tenantId = validateTenantId(tenantOf(request.raw), 'uuid');
      } catch (error) {
        return done(error);
      }
      tenantContext.run(tenantId, done);
    };

    beforeAll(async () => {
      server = await listen(fastifyStyle([tenantHook], { '/notes': () => listNotes(arrive) }));
    });
    afterAll(() => server?.close());

    it("answers concurrent requests for two tenants, each with only its tenant's rows", async () => {
      await concurrentRequests(server.url, concurrency);
    });

    it('answers 400 for a malformed tenant, before any query', async () => {
      const before = checkouts;
      const { status, body } = await get(`${server.url}/notes`, `${A}x`);
      expect(status).toBe(400);
      expect(body.code).toBe('invalid-tenant');
      expect(checkouts).toBe(before);
    });
  });
});
